/* Windows implementation of platform.h. The frame server listens on TCP 127.0.0.1 there (see
 * docs/frame-protocol.md), shared memory is a named file mapping. Not built or tested in this repo's CI
 * (Linux only); kept small and conservative. */
#define WIN32_LEAN_AND_MEAN
#include "platform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <winsock2.h>
#include <ws2tcpip.h>

void vd_set_err(vd_err *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
}

int64_t vd_now_ms(void) { return (int64_t)GetTickCount64(); }
void vd_sleep_ms(int ms) { Sleep((DWORD)ms); }

static int wsa_ready(void) {
    static LONG done = 0;
    if (InterlockedCompareExchange(&done, 1, 0) == 0) {
        WSADATA d;
        WSAStartup(MAKEWORD(2, 2), &d);
    }
    return 1;
}

vd_socket vd_connect(const char *addr, int timeout_ms, vd_err *err) {
    wsa_ready();
    if (strncmp(addr, "tcp:", 4) != 0) {
        vd_set_err(err, "unsupported server address '%s' on Windows (want tcp:127.0.0.1:PORT)", addr);
        return VD_NO_SOCKET;
    }
    const char *colon = strrchr(addr + 4, ':');
    char host[64];
    if (!colon || (size_t)(colon - (addr + 4)) >= sizeof host) {
        vd_set_err(err, "bad server address '%s'", addr);
        return VD_NO_SOCKET;
    }
    memcpy(host, addr + 4, (size_t)(colon - (addr + 4)));
    host[colon - (addr + 4)] = 0;
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons((u_short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &in.sin_addr) != 1) {
        vd_set_err(err, "bad server address '%s'", addr);
        return VD_NO_SOCKET;
    }
    SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s == INVALID_SOCKET) {
        vd_set_err(err, "socket() failed (%d)", WSAGetLastError());
        return VD_NO_SOCKET;
    }
    u_long nb = 1;
    ioctlsocket(s, FIONBIO, &nb);
    if (connect(s, (struct sockaddr *)&in, sizeof in) != 0 && WSAGetLastError() != WSAEWOULDBLOCK) {
        vd_set_err(err, "cannot connect to %s (%d)", addr, WSAGetLastError());
        closesocket(s);
        return VD_NO_SOCKET;
    }
    fd_set w, e;
    FD_ZERO(&w);
    FD_ZERO(&e);
    FD_SET(s, &w);
    FD_SET(s, &e);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (select(0, NULL, &w, &e, &tv) <= 0 || FD_ISSET(s, &e)) {
        vd_set_err(err, "cannot connect to %s", addr);
        closesocket(s);
        return VD_NO_SOCKET;
    }
    return (vd_socket)s;
}

static int wait_sock(SOCKET s, int write, int ms) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(s, &set);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return select(0, write ? NULL : &set, write ? &set : NULL, NULL, &tv);
}

int vd_send_all(vd_socket s, const void *buf, size_t n, int64_t deadline_ms, vd_err *err) {
    const char *p = (const char *)buf;
    while (n > 0) {
        int k = send((SOCKET)s, p, (int)(n > 1 << 20 ? 1 << 20 : n), 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && WSAGetLastError() == WSAEWOULDBLOCK) {
            int64_t left = deadline_ms - vd_now_ms();
            if (left > 0 && wait_sock((SOCKET)s, 1, (int)(left > 200 ? 200 : left)) >= 0) continue;
            vd_set_err(err, "timed out sending to the vdiff frame server");
            return -1;
        }
        vd_set_err(err, "lost the connection to the vdiff frame server");
        return -1;
    }
    return 0;
}

int vd_recv_all(vd_socket s, void *buf, size_t n, int64_t deadline_ms, vd_abort_fn abort_fn, void *abort_ctx,
                vd_err *err) {
    char *p = (char *)buf;
    while (n > 0) {
        int k = recv((SOCKET)s, p, (int)(n > 1 << 20 ? 1 << 20 : n), 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0) {
            vd_set_err(err, "the vdiff frame server closed the connection");
            return -1;
        }
        if (WSAGetLastError() != WSAEWOULDBLOCK) {
            vd_set_err(err, "lost the connection to the vdiff frame server");
            return -1;
        }
        for (;;) {
            if (abort_fn && abort_fn(abort_ctx)) {
                vd_set_err(err, "render aborted by the host");
                return -1;
            }
            int64_t left = deadline_ms - vd_now_ms();
            if (left <= 0) {
                vd_set_err(err, "timed out waiting for the vdiff frame server");
                return -1;
            }
            if (wait_sock((SOCKET)s, 0, (int)(left > 200 ? 200 : left)) > 0) break;
        }
    }
    return 0;
}

void vd_close_socket(vd_socket s) {
    if (s != VD_NO_SOCKET) closesocket((SOCKET)s);
}

int vd_shm_reserve(vd_shm *seg, const char *tag, size_t size, vd_err *err) {
    if (seg->ptr && seg->size >= size) return 0;
    vd_shm_release(seg);
    static LONG counter = 0;
    snprintf(seg->name, sizeof seg->name, "vdiff-ofx-%lu-%s-%ld", (unsigned long)GetCurrentProcessId(), tag,
             InterlockedIncrement(&counter));
    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, (DWORD)((uint64_t)size >> 32),
                                  (DWORD)(size & 0xFFFFFFFFu), seg->name);
    if (!h) {
        vd_set_err(err, "cannot create shared memory (%lu)", GetLastError());
        return -1;
    }
    void *p = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, size);
    if (!p) {
        vd_set_err(err, "cannot map shared memory (%lu)", GetLastError());
        CloseHandle(h);
        return -1;
    }
    seg->ptr = p;
    seg->size = size;
    seg->handle = (intptr_t)h;
    return 0;
}

void vd_shm_release(vd_shm *seg) {
    if (seg->ptr) {
        UnmapViewOfFile(seg->ptr);
        CloseHandle((HANDLE)seg->handle);
    }
    seg->ptr = NULL;
    seg->size = 0;
    seg->handle = 0;
}

int vd_spawn_detached(char *const argv[], const char *cwd, const char *log_path, vd_err *err) {
    char cmd[8192];
    size_t used = 0;
    cmd[0] = 0;
    for (int i = 0; argv[i]; i++) { /* quote each argument; enough for paths with spaces */
        int k = snprintf(cmd + used, sizeof cmd - used, "%s\"%s\"", i ? " " : "", argv[i]);
        if (k < 0 || (size_t)k >= sizeof cmd - used) {
            vd_set_err(err, "server command too long");
            return -1;
        }
        used += (size_t)k;
    }
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    HANDLE log = CreateFileA(log_path && *log_path ? log_path : "NUL", FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE,
                             &sa, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdOutput = si.hStdError = log;
    si.hStdInput = NULL;
    BOOL ok = CreateProcessA(NULL, cmd, NULL, NULL, TRUE, DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP, NULL,
                             cwd && *cwd ? cwd : NULL, &si, &pi);
    if (log != INVALID_HANDLE_VALUE) CloseHandle(log);
    if (!ok) {
        vd_set_err(err, "could not start %s (%lu)", argv[0], GetLastError());
        return -1;
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return 0;
}

int vd_process_id(void) { return (int)GetCurrentProcessId(); }

int vd_config_dir(char *out, size_t n) {
    const char *override = getenv("VDIFF_CONFIG_DIR");
    if (override && *override) return snprintf(out, n, "%s", override) < (int)n ? 0 : -1;
    const char *appdata = getenv("APPDATA");
    if (!appdata || !*appdata) return -1;
    return snprintf(out, n, "%s\\vdiff\\config", appdata) < (int)n ? 0 : -1;
}

int vd_module_path(char *out, size_t n) {
    HMODULE mod = NULL;
    if (!GetModuleHandleExA(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                            (LPCSTR)&vd_module_path, &mod))
        return -1;
    DWORD k = GetModuleFileNameA(mod, out, (DWORD)n);
    return (k == 0 || k >= n) ? -1 : 0;
}

struct vd_mutex {
    CRITICAL_SECTION cs;
};

vd_mutex *vd_mutex_new(void) {
    vd_mutex *m = (vd_mutex *)calloc(1, sizeof *m);
    if (m) InitializeCriticalSection(&m->cs);
    return m;
}

void vd_mutex_free(vd_mutex *m) {
    if (!m) return;
    DeleteCriticalSection(&m->cs);
    free(m);
}

void vd_mutex_lock(vd_mutex *m) {
    if (m) EnterCriticalSection(&m->cs);
}

void vd_mutex_unlock(vd_mutex *m) {
    if (m) LeaveCriticalSection(&m->cs);
}
