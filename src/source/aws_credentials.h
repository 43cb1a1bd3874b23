/* aws_credentials.h - private to src/source/: the AWS credential chain and the
 * shared settings (profile, region, endpoints) that s3.c signs requests with.
 * The chain follows the AWS SDKs: environment, shared files, web identity,
 * container endpoint, EC2 instance metadata; temporary credentials refresh. */
#ifndef DI_SOURCE_AWS_CREDENTIALS_H
#define DI_SOURCE_AWS_CREDENTIALS_H

#include <stddef.h>
#include <time.h>
#include "dsa_ingest/error.h"

/* One set of credentials. Every string is owned by the struct and zeroed when
 * it is freed; none of them may ever reach a message or a log. */
typedef struct di_aws_creds {
    char *access_key;
    char *secret_key;
    char *session_token; /* NULL for long-term keys */
    time_t expires;      /* 0: never expires */
    time_t fetched;      /* when they were obtained (for the refresh point) */
} di_aws_creds;

/* Where the credentials came from, in the chain's order. */
typedef enum di_aws_kind {
    DI_AWS_ANONYMOUS = 0, /* nothing found: requests go unsigned */
    DI_AWS_ENV,
    DI_AWS_PROFILE,
    DI_AWS_WEB_IDENTITY,
    DI_AWS_CONTAINER,
    DI_AWS_IMDS,
} di_aws_kind;

typedef struct di_aws_provider di_aws_provider;

/* di_aws_provider_new reads the settings and walks the chain once, fetching
 * temporary credentials if that is where it ends. NULL with err set: config
 * (a named profile that does not exist, half-set variables, a refused role)
 * or transient (STS or the metadata service unreachable). */
di_aws_provider *di_aws_provider_new(di_error *err);

/* di_aws_provider_get returns the credentials to sign with at time `now`,
 * refreshing temporary ones first when they are near their expiry. *out is
 * NULL for anonymous access and is BORROWED until the next call. */
DI_MUSTCHECK int di_aws_provider_get(di_aws_provider *p, time_t now, const di_aws_creds **out,
                                     di_error *err);

/* di_aws_provider_expire forces a refresh before the next get (the server
 * said the token expired); returns 1 when the credentials can be refreshed. */
int di_aws_provider_expire(di_aws_provider *p);

di_aws_kind di_aws_provider_kind(const di_aws_provider *p);
const char *di_aws_provider_region(const di_aws_provider *p);      /* never empty */
const char *di_aws_provider_s3_endpoint(const di_aws_provider *p); /* "" = AWS itself */
/* di_aws_provider_describe: where the credentials come from, for messages,
 * e.g. `from profile "dev" in /home/u/.aws/credentials`. Never a secret. */
const char *di_aws_provider_describe(const di_aws_provider *p);
/* di_aws_provider_fetches: credential requests made so far (tests, stats). */
int di_aws_provider_fetches(const di_aws_provider *p);
void di_aws_provider_free(di_aws_provider *p); /* accepts NULL */

/* ---- pieces exposed for the unit tests ---- */

/* di_aws_profile holds what dsa-ingest reads from one profile, after the
 * credentials file's keys were merged over the config file's. */
typedef struct di_aws_profile {
    int found;
    char *values[13]; /* indexed by di_aws_key; owned, NULL when absent */
} di_aws_profile;

typedef enum di_aws_key {
    DI_AWS_KEY_ACCESS_KEY_ID,
    DI_AWS_KEY_SECRET_ACCESS_KEY,
    DI_AWS_KEY_SESSION_TOKEN,
    DI_AWS_KEY_REGION,
    DI_AWS_KEY_ENDPOINT_URL,
    DI_AWS_KEY_ROLE_ARN,
    DI_AWS_KEY_WEB_IDENTITY_TOKEN_FILE,
    DI_AWS_KEY_ROLE_SESSION_NAME,
    DI_AWS_KEY_SOURCE_PROFILE,
    DI_AWS_KEY_CREDENTIAL_SOURCE,
    DI_AWS_KEY_CREDENTIAL_PROCESS,
    DI_AWS_KEY_SSO_START_URL,
    DI_AWS_KEY_SSO_SESSION,
} di_aws_key;

/* di_aws_profile_parse reads profile `name` from the text of a shared file:
 * config_style selects `[profile name]` sections (the config file, where the
 * default profile is `[default]`) over `[name]` (the credentials file). Keys
 * already set in *p are kept, so parse the credentials file first. */
int di_aws_profile_parse(di_aws_profile *p, const char *text, const char *name, int config_style);
const char *di_aws_profile_get(const di_aws_profile *p, di_aws_key k);
void di_aws_profile_cleanup(di_aws_profile *p);

/* di_aws_parse_time reads an ISO 8601 UTC time ("2024-01-02T03:04:05Z",
 * fractions and +hh:mm offsets allowed); -1 when it is not one. */
int di_aws_parse_time(const char *s, time_t *out);

/* di_aws_need_refresh: refresh at expires - margin, but never more than half
 * way into the credentials' lifetime (short-lived ones are not refetched on
 * every request). */
int di_aws_need_refresh(const di_aws_creds *c, time_t now, int margin_s);

/* di_aws_parse_sts parses an AssumeRoleWithWebIdentity response (or its
 * ErrorResponse: code and message are filled, -1 returned). */
int di_aws_parse_sts(const char *xml, size_t n, di_aws_creds *out, char *code, size_t codesz,
                     char *message, size_t msgsz);

/* di_aws_parse_json parses the container / instance metadata JSON
 * ({"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}); -1 when the
 * document lacks the keys. */
int di_aws_parse_json(const char *json, di_aws_creds *out);

void di_aws_creds_cleanup(di_aws_creds *c); /* zeroes and frees the strings */

/* di_aws_xml_fields grabs the text of the first element named names[i] into
 * values[i] (malloc'd, NULL when absent) from an S3 or STS XML body; a
 * truncated document yields what came before the cut. Returns how many were
 * found; the caller frees every values[i]. */
size_t di_aws_xml_fields(const char *xml, size_t len, const char *const *names, char **values,
                         size_t n);

#endif
