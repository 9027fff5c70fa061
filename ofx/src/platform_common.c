/* Platform helpers that are plain C on every OS (the OS-specific ones are in platform_posix.c / platform_win.c). */

#include "platform.h"

#include <stdio.h>
#include <stdlib.h>

char *vd_read_file(const char *path, size_t max_bytes, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = (char *)malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    size_t len = fread(buf, 1, max_bytes, f);
    fclose(f);
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

int vd_env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    return (end && *end == 0 && x >= 0 && x < 1000000) ? (int)x : fallback;
}
