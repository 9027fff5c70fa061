/* Finding the vdiff frame server and starting it on demand.
 *
 * The server publishes <config>/frames.addr and the token in <config>/token. When the address is missing
 * or nobody answers, the plugin starts the command `vdiff install-ofx` recorded in the bundle
 * (Contents/Resources/vdiff.json), detached, and waits a bounded time for it to listen. */
#ifndef VDIFF_SERVER_LINK_H
#define VDIFF_SERVER_LINK_H

#include "frames_client.h"

/* Call once from the load action (creates the start lock while the host is single-threaded). */
void vd_link_init(void);

/* Connect and HELLO; start the server if needed. 0 on success. */
int vd_link_connect(vd_conn *c, const char *client_name, vd_err *err);

/* Path of the bundle's vdiff.json (for messages); empty if the plugin path is unknown. */
void vd_link_config_path(char *out, size_t n);

/* Parsing of vdiff.json, exposed for tests: fills argv (malloc'd strings, NULL-terminated, at most max-1)
 * and cwd. Returns the number of argv entries, -1 if the file has no usable "server_argv". */
int vd_parse_launch_json(const char *text, char **argv, int max, char *cwd, size_t cwd_len);
/* Any JSON array of strings by key (the same reader); used for the install-time "models" list. */
int vd_parse_string_array(const char *text, const char *key, char **out, int max);
/* Connect to an already running server only (no start, short timeouts): describe uses this. */
int vd_link_connect_existing(vd_conn *c, const char *client_name, vd_err *err);

#endif
