/* percent.c - see percent.h. */
#include "util/percent.h"

/* hexval returns the value of one hex digit, -1 for anything else. */
static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int di_percent_decode(const char *in, size_t n, int plus_is_space, char *out, size_t outsz) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval(in[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(in[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    if (outsz == 0)
        return -1;
    out[o] = '\0';
    return 0;
}
