/* readopts.h - the options that say how to read an object, shared by
 * `import` and `scan`: their usage text and their checks. */
#ifndef DI_CLI_READOPTS_H
#define DI_CLI_READOPTS_H

extern const char cli_read_usage[];

/* cli_check_read_values returns NULL when --format and --compression name
 * known kinds, else the message to show. */
const char *cli_check_read_values(const char *format, const char *compression);

/* cli_parse_long reads a whole number >= min (--max-errors, --batch-size). */
int cli_parse_long(const char *s, long min, long *out);

/* cli_parse_delimiter accepts one character, or \t / tab; not a quote, CR or LF. */
int cli_parse_delimiter(const char *s, char *out);

#endif
