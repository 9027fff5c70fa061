/* See server_link.h. */
#include "server_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define SEP '\\'
#else
#define SEP '/'
#endif

#define MAX_ARGS 32

static vd_mutex *g_start_lock;       /* one start attempt at a time per host process */
static int64_t g_last_spawn_ms = -1; /* when we last started a server */
static int64_t g_last_fail_ms = -1;  /* when a start last timed out: fail fast for a while after */

static void strip(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    size_t k = strspn(s, " \t\r\n");
    if (k) memmove(s, s + k, strlen(s + k) + 1);
}

static int read_stripped(const char *path, char *out, size_t cap) {
    size_t len = 0;
    char *text = vd_read_file(path, cap - 1, &len);
    if (!text) return -1;
    memcpy(out, text, len + 1);
    free(text);
    strip(out);
    return out[0] ? 0 : -1;
}

static int try_connect(vd_conn *c, const char *cfg, const char *client_name, vd_err *err) {
    char path[VD_PATH_MAX], addr[VD_PATH_MAX], token[300];
    snprintf(path, sizeof path, "%s%cframes.addr", cfg, SEP);
    if (read_stripped(path, addr, sizeof addr)) {
        vd_set_err(err, "the vdiff frame server is not running (no %s)", path);
        return -1;
    }
    snprintf(path, sizeof path, "%s%ctoken", cfg, SEP);
    if (read_stripped(path, token, sizeof token)) {
        vd_set_err(err, "cannot read the vdiff token file %s", path);
        return -1;
    }
    return vd_conn_open(c, addr, token, client_name, err);
}

void vd_link_config_path(char *out, size_t n) {
    char mod[VD_PATH_MAX];
    out[0] = 0;
    if (vd_module_path(mod, sizeof mod)) return;
    /* .../vdiff.ofx.bundle/Contents/<arch>/vdiff.ofx -> .../Contents/Resources/vdiff.json */
    for (int up = 0; up < 2; up++) {
        char *cut = strrchr(mod, '/');
#ifdef _WIN32
        char *cut2 = strrchr(mod, '\\');
        if (!cut || (cut2 && cut2 > cut)) cut = cut2;
#endif
        if (!cut) return;
        *cut = 0;
    }
    snprintf(out, n, "%s%cResources%cvdiff.json", mod, SEP, SEP);
}

/* Minimal JSON string reader: we only read a file our installer wrote, but never trust its bytes. */
static const char *parse_string(const char *p, char *out, size_t cap) {
    if (*p != '"') return NULL;
    p++;
    size_t k = 0;
    while (*p && *p != '"') {
        unsigned c = (unsigned char)*p++;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else return NULL;
                }
                /* encode as UTF-8 (no surrogate pairs: our installer writes ensure_ascii=False) */
                if (v < 0x80) c = v;
                else {
                    char tmp[3];
                    int n = 0;
                    if (v < 0x800) {
                        tmp[n++] = (char)(0xC0 | (v >> 6));
                    } else {
                        tmp[n++] = (char)(0xE0 | (v >> 12));
                        tmp[n++] = (char)(0x80 | ((v >> 6) & 0x3F));
                    }
                    for (int i = 0; i < n; i++)
                        if (k + 1 < cap) out[k++] = tmp[i];
                    c = 0x80 | (v & 0x3F);
                }
                break;
            }
            case 0: return NULL;
            default: c = (unsigned char)e; break; /* \" \\ \/ */
            }
        }
        if (k + 1 >= cap) return NULL;
        out[k++] = (char)c;
    }
    if (*p != '"') return NULL;
    out[k] = 0;
    return p + 1;
}

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}

static const char *find_key(const char *text, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(text, pat);
    if (!p) return NULL;
    p = skip_ws(p + strlen(pat));
    if (*p != ':') return NULL;
    return skip_ws(p + 1);
}

int vd_parse_string_array(const char *text, const char *key, char **out, int max) {
    const char *p = find_key(text, key);
    if (!p || *p != '[') return -1;
    p = skip_ws(p + 1);
    int n = 0;
    char buf[VD_PATH_MAX];
    while (p && *p == '"' && n < max - 1) {
        p = parse_string(p, buf, sizeof buf);
        if (!p) break;
        out[n] = (char *)malloc(strlen(buf) + 1);
        if (!out[n]) break;
        strcpy(out[n++], buf);
        p = skip_ws(p);
        if (*p == ',') p = skip_ws(p + 1);
    }
    out[n] = NULL;
    if (!p || *p != ']') {
        for (int i = 0; i < n; i++) free(out[i]);
        out[0] = NULL;
        return -1;
    }
    return n;
}

int vd_parse_launch_json(const char *text, char **argv, int max, char *cwd, size_t cwd_len) {
    if (cwd && cwd_len) cwd[0] = 0;
    const char *p = find_key(text, "cwd");
    if (p && cwd) parse_string(p, cwd, cwd_len);
    int n = vd_parse_string_array(text, "server_argv", argv, max);
    if (n == 0) argv[0] = NULL;
    return n > 0 ? n : -1;
}

static int start_server(const char *cfg, vd_err *err) {
    char json_path[VD_PATH_MAX];
    vd_link_config_path(json_path, sizeof json_path);
    char *text = json_path[0] ? vd_read_file(json_path, 1 << 16, NULL) : NULL;
    if (!text) {
        vd_set_err(err, "the vdiff frame server is not running and no start command was recorded (%s missing): "
                        "run `vdiff install-ofx`, or start `vdiff serve`",
                   json_path[0] ? json_path : "vdiff.json");
        return -1;
    }
    char *argv[MAX_ARGS];
    char cwd[VD_PATH_MAX];
    int n = vd_parse_launch_json(text, argv, MAX_ARGS, cwd, sizeof cwd);
    free(text);
    if (n <= 0) {
        vd_set_err(err, "%s has no usable \"server_argv\"; rerun `vdiff install-ofx`", json_path);
        return -1;
    }
    char log_path[VD_PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s%cofx-server.log", cfg, SEP);
    int rc = vd_spawn_detached(argv, cwd, log_path, err);
    for (int i = 0; i < n; i++) free(argv[i]);
    return rc;
}

#ifdef _WIN32
#include <direct.h>
static void make_dirs(const char *path) {
    char tmp[VD_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 3; *p; p++)
        if (*p == '\\' || *p == '/') {
            char c = *p;
            *p = 0;
            _mkdir(tmp);
            *p = c;
        }
    _mkdir(tmp);
}
#else
#include <sys/stat.h>
static void make_dirs(const char *path) {
    char tmp[VD_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
    mkdir(tmp, 0700);
}
#endif

void vd_link_init(void) {
    if (!g_start_lock) g_start_lock = vd_mutex_new();
}

int vd_link_connect_existing(vd_conn *c, const char *client_name, vd_err *err) {
    char cfg[VD_PATH_MAX];
    if (vd_config_dir(cfg, sizeof cfg)) {
        vd_set_err(err, "cannot find the vdiff config folder");
        return -1;
    }
    return try_connect(c, cfg, client_name, err);
}

int vd_link_connect(vd_conn *c, const char *client_name, vd_err *err) {
    char cfg[VD_PATH_MAX];
    if (vd_config_dir(cfg, sizeof cfg)) {
        vd_set_err(err, "cannot find the vdiff config folder (set VDIFF_CONFIG_DIR or HOME)");
        return -1;
    }
    if (try_connect(c, cfg, client_name, err) == 0) return 0;
    if (c->last_code == 4 /* BAD_TOKEN */) return -1; /* a server is there; starting another will not help */

    vd_link_init();
    vd_mutex_lock(g_start_lock);
    int64_t now = vd_now_ms();
    int wait_s = vd_env_int("VDIFF_OFX_START_TIMEOUT", 30);
    if (g_last_fail_ms >= 0 && now - g_last_fail_ms < 10000) {
        /* a start just failed: do not make every frame wait again, the message is already shown */
        vd_mutex_unlock(g_start_lock);
        return -1;
    }
    if (try_connect(c, cfg, client_name, err) == 0) { /* another render thread started it meanwhile */
        vd_mutex_unlock(g_start_lock);
        return 0;
    }
    vd_err first = *err;
    if (g_last_spawn_ms < 0 || now - g_last_spawn_ms > (int64_t)wait_s * 1000) {
        make_dirs(cfg);
        if (start_server(cfg, err)) {
            g_last_fail_ms = vd_now_ms();
            vd_mutex_unlock(g_start_lock);
            return -1;
        }
        g_last_spawn_ms = vd_now_ms();
    }
    int64_t deadline = g_last_spawn_ms + (int64_t)wait_s * 1000;
    while (vd_now_ms() < deadline) {
        vd_sleep_ms(150);
        if (try_connect(c, cfg, client_name, err) == 0) {
            vd_mutex_unlock(g_start_lock);
            return 0;
        }
        if (c->last_code == 4) break;
    }
    g_last_fail_ms = vd_now_ms();
    vd_mutex_unlock(g_start_lock);
    vd_set_err(err, "started the vdiff frame server but it did not answer within %d s (%s); see %s%cofx-server.log",
               wait_s, first.text, cfg, SEP);
    return -1;
}
