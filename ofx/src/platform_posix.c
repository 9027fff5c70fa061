/* POSIX (Linux, macOS) implementation of platform.h. */
#define _GNU_SOURCE
#include "platform.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#ifdef MSG_NOSIGNAL
#define VD_SEND_FLAGS MSG_NOSIGNAL /* a server that died must not SIGPIPE-kill the host */
#else
#define VD_SEND_FLAGS 0
#endif

void vd_set_err(vd_err *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
}

int64_t vd_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vd_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl >= 0) fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

static int wait_fd(int fd, short events, int64_t deadline_ms) {
    for (;;) {
        int64_t left = deadline_ms - vd_now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, left > 200 ? 200 : (int)left);
        if (r > 0) return 1;
        if (r < 0 && errno != EINTR) return -1;
        if (r == 0 && deadline_ms - vd_now_ms() <= 0) return 0;
        if (r == 0) continue;
    }
}

vd_socket vd_connect(const char *addr, int timeout_ms, vd_err *err) {
    int fd = -1;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    memset(&ss, 0, sizeof ss);
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        const char *path = addr + 5;
        if (strlen(path) >= sizeof un->sun_path) {
            vd_set_err(err, "socket path too long: %s", path);
            return VD_NO_SOCKET;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, path);
        len = sizeof *un;
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
    } else if (strncmp(addr, "tcp:", 4) == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        char host[64];
        const char *colon = strrchr(addr + 4, ':');
        if (!colon || (size_t)(colon - (addr + 4)) >= sizeof host) {
            vd_set_err(err, "bad server address '%s'", addr);
            return VD_NO_SOCKET;
        }
        memcpy(host, addr + 4, (size_t)(colon - (addr + 4)));
        host[colon - (addr + 4)] = 0;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
            vd_set_err(err, "bad server address '%s'", addr);
            return VD_NO_SOCKET;
        }
        len = sizeof *in;
        fd = socket(AF_INET, SOCK_STREAM, 0);
    } else {
        vd_set_err(err, "unknown server address '%s' (want unix:PATH or tcp:HOST:PORT)", addr);
        return VD_NO_SOCKET;
    }
    if (fd < 0) {
        vd_set_err(err, "socket(): %s", strerror(errno));
        return VD_NO_SOCKET;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one); /* macOS has no MSG_NOSIGNAL */
#endif
    set_nonblocking(fd, 1);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            vd_set_err(err, "cannot connect to %s: %s", addr, strerror(errno));
            close(fd);
            return VD_NO_SOCKET;
        }
        int w = wait_fd(fd, POLLOUT, vd_now_ms() + timeout_ms);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (w <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            vd_set_err(err, "cannot connect to %s: %s", addr, w == 0 ? "timed out" : strerror(soerr ? soerr : errno));
            close(fd);
            return VD_NO_SOCKET;
        }
    }
    return (vd_socket)fd;
}

int vd_send_all(vd_socket s, const void *buf, size_t n, int64_t deadline_ms, vd_err *err) {
    const char *p = (const char *)buf;
    while (n > 0) {
        ssize_t k = send((int)s, p, n, VD_SEND_FLAGS);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd((int)s, POLLOUT, deadline_ms);
            if (w > 0) continue;
            if (w == 0)
                vd_set_err(err, "timed out sending to the vdiff frame server");
            else
                vd_set_err(err, "send failed: %s", strerror(errno));
            return -1;
        }
        vd_set_err(err, "lost the connection to the vdiff frame server (%s)", strerror(errno));
        return -1;
    }
    return 0;
}

int vd_recv_all(vd_socket s, void *buf, size_t n, int64_t deadline_ms, vd_abort_fn abort_fn, void *abort_ctx,
                vd_err *err) {
    char *p = (char *)buf;
    while (n > 0) {
        ssize_t k = recv((int)s, p, n, 0);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0) {
            vd_set_err(err, "the vdiff frame server closed the connection");
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            vd_set_err(err, "lost the connection to the vdiff frame server (%s)", strerror(errno));
            return -1;
        }
        /* wait in short slices so a host abort is noticed within ~200 ms */
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
            struct pollfd pf = {(int)s, POLLIN, 0};
            int r = poll(&pf, 1, left > 200 ? 200 : (int)left);
            if (r > 0) break;
            if (r < 0 && errno != EINTR) {
                vd_set_err(err, "poll failed: %s", strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

void vd_close_socket(vd_socket s) {
    if (s != VD_NO_SOCKET) close((int)s);
}

int vd_shm_reserve(vd_shm *seg, const char *tag, size_t size, vd_err *err) {
    if (seg->ptr && seg->size >= size) return 0;
    vd_shm_release(seg);
    static unsigned counter = 0;
    /* a fresh name per (re)creation: the server keeps old mappings by name until the connection closes */
    snprintf(seg->name, sizeof seg->name, "vdiff-ofx-%d-%s-%u", (int)getpid(), tag, __sync_add_and_fetch(&counter, 1));
    char shm_name[100];
    snprintf(shm_name, sizeof shm_name, "/%s", seg->name);
    int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        vd_set_err(err, "shm_open(%s): %s", shm_name, strerror(errno));
        return -1;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        vd_set_err(err, "cannot size shared memory to %zu bytes: %s", size, strerror(errno));
        close(fd);
        shm_unlink(shm_name);
        return -1;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        vd_set_err(err, "cannot map %zu bytes of shared memory: %s", size, strerror(errno));
        close(fd);
        shm_unlink(shm_name);
        return -1;
    }
    seg->ptr = p;
    seg->size = size;
    seg->handle = fd;
    return 0;
}

void vd_shm_release(vd_shm *seg) {
    if (seg->ptr) {
        char shm_name[100];
        snprintf(shm_name, sizeof shm_name, "/%s", seg->name);
        munmap(seg->ptr, seg->size);
        close((int)seg->handle);
        shm_unlink(shm_name);
    }
    seg->ptr = NULL;
    seg->size = 0;
    seg->handle = -1;
}

int vd_spawn_detached(char *const argv[], const char *cwd, const char *log_path, vd_err *err) {
    /* Everything the child needs is prepared before fork: after fork in a multi-threaded host only
     * async-signal-safe calls are allowed. Double fork so the server is re-parented to init and never
     * becomes a zombie of the host. */
    int logfd = open(log_path && *log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nullfd = open("/dev/null", O_RDONLY);
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536) maxfd = 65536;
    pid_t pid = fork();
    if (pid < 0) {
        vd_set_err(err, "fork failed: %s", strerror(errno));
        if (logfd >= 0) close(logfd);
        if (nullfd >= 0) close(nullfd);
        return -1;
    }
    if (pid == 0) {
        setsid();
        pid_t pid2 = fork();
        if (pid2 != 0) _exit(pid2 < 0 ? 1 : 0);
        if (nullfd >= 0) dup2(nullfd, 0);
        if (logfd >= 0) {
            dup2(logfd, 1);
            dup2(logfd, 2);
        }
        for (long fd = 3; fd < maxfd; fd++) close((int)fd);
        if (cwd && *cwd && chdir(cwd) != 0) _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (logfd >= 0) close(logfd);
    if (nullfd >= 0) close(nullfd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        vd_set_err(err, "could not start %s", argv[0]);
        return -1;
    }
    return 0;
}

int vd_process_id(void) { return (int)getpid(); }

int vd_config_dir(char *out, size_t n) {
    const char *override = getenv("VDIFF_CONFIG_DIR");
    if (override && *override) return snprintf(out, n, "%s", override) < (int)n ? 0 : -1;
    const char *home = getenv("HOME");
    if (!home || !*home) return -1;
#ifdef __APPLE__
    return snprintf(out, n, "%s/Library/Application Support/vdiff/config", home) < (int)n ? 0 : -1;
#else
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg) return snprintf(out, n, "%s/vdiff", xdg) < (int)n ? 0 : -1;
    return snprintf(out, n, "%s/.config/vdiff", home) < (int)n ? 0 : -1;
#endif
}

int vd_module_path(char *out, size_t n) {
    Dl_info info;
    if (!dladdr((void *)&vd_module_path, &info) || !info.dli_fname) return -1;
    return snprintf(out, n, "%s", info.dli_fname) < (int)n ? 0 : -1;
}

struct vd_mutex {
    pthread_mutex_t m;
};

vd_mutex *vd_mutex_new(void) {
    vd_mutex *m = (vd_mutex *)calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->m, NULL);
    return m;
}

void vd_mutex_free(vd_mutex *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->m);
    free(m);
}

void vd_mutex_lock(vd_mutex *m) {
    if (m) pthread_mutex_lock(&m->m);
}

void vd_mutex_unlock(vd_mutex *m) {
    if (m) pthread_mutex_unlock(&m->m);
}
