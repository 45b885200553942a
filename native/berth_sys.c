/*
 * berth_sys: the few system calls Node.js does not expose (flock, mount, umount2, mknod, xattrs), and a probe of
 * which system call ABIs the kernel runs (x32Abi), and spawnSession: posix_spawn of a helper in its own session
 * (a vfork-style clone, unlike libuv's fork of the whole Node.js address space).
 * Every function throws a JS Error with .code set to the errno name on failure; blocking calls
 * (flock without LOCK_NB, mount) run on the main thread: berth is a CLI and holds no event loop work.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static const char *errname(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EINTR: return "EINTR";
    case EIO: return "EIO"; case EBADF: return "EBADF"; case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES"; case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR"; case EINVAL: return "EINVAL"; case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS"; case ENAMETOOLONG: return "ENAMETOOLONG"; case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP"; case ENODEV: return "ENODEV"; case E2BIG: return "E2BIG";
    case ERANGE: return "ERANGE"; case ELOOP: return "ELOOP";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *call, const char *path) {
  int e = errno;
  char msg[1024];
  snprintf(msg, sizeof msg, "%s %s: %s", call, path ? path : "", strerror(e));
  napi_throw_error(env, errname(e), msg);
  return NULL;
}

/* Copies a JS string argument into a malloc'd buffer; NULL for null/undefined. */
static char *get_str(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) return NULL;
  size_t len = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  char *s = malloc(len + 1);
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static int64_t get_int(napi_env env, napi_value v) {
  int64_t n = 0;
  napi_get_value_int64(env, v, &n);
  return n;
}

#define ARGS(n) size_t argc = n; napi_value argv[n]; napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static napi_value js_flock(napi_env env, napi_callback_info info) {
  ARGS(2);
  int fd = (int)get_int(env, argv[0]);
  int op = (int)get_int(env, argv[1]);
  int r;
  do { r = flock(fd, op); } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "flock", NULL);
  return NULL;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  ARGS(5);
  char *src = get_str(env, argv[0]), *tgt = get_str(env, argv[1]), *fs = get_str(env, argv[2]);
  unsigned long flags = (unsigned long)get_int(env, argv[3]);
  char *data = get_str(env, argv[4]);
  int r = mount(src, tgt, fs, flags, data);
  napi_value ret = NULL;
  if (r < 0) ret = throw_errno(env, "mount", tgt);
  free(src); free(tgt); free(fs); free(data);
  return ret;
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *tgt = get_str(env, argv[0]);
  int flags = (int)get_int(env, argv[1]);
  int r = umount2(tgt, flags);
  napi_value ret = NULL;
  if (r < 0) ret = throw_errno(env, "umount2", tgt);
  free(tgt);
  return ret;
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(4);
  char *path = get_str(env, argv[0]);
  mode_t mode = (mode_t)get_int(env, argv[1]);
  dev_t dev = makedev((unsigned)get_int(env, argv[2]), (unsigned)get_int(env, argv[3]));
  int r = mknod(path, mode, dev);
  napi_value ret = NULL;
  if (r < 0) ret = throw_errno(env, "mknod", path);
  free(path);
  return ret;
}

static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *path = get_str(env, argv[0]), *name = get_str(env, argv[1]);
  void *data = NULL; size_t len = 0;
  napi_get_buffer_info(env, argv[2], &data, &len);
  int r = lsetxattr(path, name, data, len, 0);
  napi_value ret = NULL;
  if (r < 0) ret = throw_errno(env, "lsetxattr", path);
  free(path); free(name);
  return ret;
}

/* Returns a Buffer, or null when the attribute is absent. */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path = get_str(env, argv[0]), *name = get_str(env, argv[1]);
  napi_value ret = NULL;
  ssize_t n = lgetxattr(path, name, NULL, 0);
  if (n < 0) {
    if (errno == ENODATA || errno == ENOTSUP) napi_get_null(env, &ret);
    else ret = throw_errno(env, "lgetxattr", path);
  } else {
    void *buf;
    napi_create_buffer(env, (size_t)n, &buf, &ret);
    if (n > 0 && lgetxattr(path, name, buf, (size_t)n) < 0) ret = throw_errno(env, "lgetxattr", path);
  }
  free(path); free(name);
  return ret;
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  ARGS(1);
  char *path = get_str(env, argv[0]);
  napi_value arr;
  napi_create_array(env, &arr);
  ssize_t n = llistxattr(path, NULL, 0);
  if (n < 0) {
    if (errno != ENOTSUP) { napi_value r = throw_errno(env, "llistxattr", path); free(path); return r; }
    n = 0;
  }
  if (n > 0) {
    char *buf = malloc((size_t)n);
    n = llistxattr(path, buf, (size_t)n);
    uint32_t i = 0;
    for (ssize_t off = 0; off < n; off += (ssize_t)strlen(buf + off) + 1) {
      napi_value s;
      napi_create_string_utf8(env, buf + off, NAPI_AUTO_LENGTH, &s);
      napi_set_element(env, arr, i++, s);
    }
    free(buf);
  }
  free(path);
  return arr;
}

/*
 * x32Abi(): whether this process may execute x32 system calls: getpid with the x32 bit, made in a vfork child so that
 * a seccomp filter without x32 (berth inside a berth container, systemd's SystemCallArchitectures=native), whose
 * bad-architecture action kills the calling thread, cannot hit berth itself. False on non-x86_64.
 */
static napi_value js_x32abi(napi_env env, napi_callback_info info) {
  (void)info;
  bool yes = false;
#ifdef __x86_64__
  pid_t pid = vfork();
  if (pid == 0) {
    long r = syscall(0x40000000L | SYS_getpid);
    _exit(r == -1 && errno == ENOSYS ? 1 : 0);
  }
  if (pid > 0) {
    int st = 0;
    pid_t w;
    do { w = waitpid(pid, &st, 0); } while (w < 0 && errno == EINTR);
    yes = w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
#endif
  napi_value v;
  napi_get_boolean(env, yes, &v);
  return v;
}

/*
 * spawn(file, argv, setsid, pipes): starts file with argv (posix_spawn: no copy of Node's address space), with
 * stdin on /dev/null, stdout on /dev/null unless piped, stderr inherited unless piped, and each child fd listed in
 * `pipes` the write end of a new pipe. Returns { pid, fds }: the pipes' read ends (close-on-exec), in that order.
 * Signal dispositions and mask are reset to the defaults (Node ignores SIGPIPE); setsid starts a new session.
 */
#define MAX_PIPES 4
static napi_value js_spawn(napi_env env, napi_callback_info info) {
  ARGS(4);
  char *file = get_str(env, argv[0]);
  uint32_t n = 0, np = 0;
  napi_get_array_length(env, argv[1], &n);
  napi_get_array_length(env, argv[3], &np);
  bool setsid = false;
  napi_get_value_bool(env, argv[2], &setsid);
  char **args = calloc((size_t)n + 1, sizeof(char *));
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    args[i] = get_str(env, v);
  }
  napi_value result = NULL;
  int p[MAX_PIPES][2];
  int target[MAX_PIPES];
  for (int i = 0; i < MAX_PIPES; i++) p[i][0] = p[i][1] = -1;
  int devnull = -1;
  bool piped1 = false;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  if (np > MAX_PIPES) { napi_throw_range_error(env, NULL, "spawn: too many pipes"); goto out; }
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) { throw_errno(env, "open", "/dev/null"); goto out; }
  for (uint32_t i = 0; i < np; i++) {
    napi_value v;
    napi_get_element(env, argv[3], i, &v);
    target[i] = (int)get_int(env, v);
    if (target[i] == 1) piped1 = true;
  }
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  if (!piped1) posix_spawn_file_actions_adddup2(&fa, devnull, 1);
  for (uint32_t i = 0; i < np; i++) {
    if (pipe2(p[i], O_CLOEXEC) < 0) { throw_errno(env, "pipe2", NULL); goto out; }
    posix_spawn_file_actions_adddup2(&fa, p[i][1], target[i]);
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, (setsid ? POSIX_SPAWN_SETSID : 0) | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int e = posix_spawn(&pid, file, &fa, &at, args, environ);
  if (e != 0) { errno = e; throw_errno(env, "posix_spawn", file); goto out; }
  napi_value vpid, vfds;
  napi_create_object(env, &result);
  napi_create_int32(env, pid, &vpid);
  napi_create_array_with_length(env, np, &vfds);
  for (uint32_t i = 0; i < np; i++) {
    napi_value vfd;
    napi_create_int32(env, p[i][0], &vfd);
    napi_set_element(env, vfds, i, vfd);
    p[i][0] = -1;
  }
  napi_set_named_property(env, result, "pid", vpid);
  napi_set_named_property(env, result, "fds", vfds);
out:
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  for (int i = 0; i < MAX_PIPES; i++) {
    if (p[i][0] >= 0) close(p[i][0]);
    if (p[i][1] >= 0) close(p[i][1]);
  }
  if (devnull >= 0) close(devnull);
  for (uint32_t i = 0; i < n; i++) free(args[i]);
  free(args);
  free(file);
  return result;
}

/* waitpid(pid, nohang): that child's exit code, or 128+signal; -1 while it runs (nohang); -2 if it is not ours. */
static napi_value js_waitpid(napi_env env, napi_callback_info info) {
  ARGS(2);
  pid_t pid = (pid_t)get_int(env, argv[0]);
  bool nohang = false;
  napi_get_value_bool(env, argv[1], &nohang);
  int st = 0;
  pid_t r;
  do { r = waitpid(pid, &st, nohang ? WNOHANG : 0); } while (r < 0 && errno == EINTR);
  napi_value v;
  napi_create_int32(env, r == 0 ? -1 : r < 0 ? -2 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), &v);
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"flock", NULL, js_flock, NULL, NULL, NULL, napi_default, NULL},
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
    {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_default, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_default, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_default, NULL},
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_default, NULL},
    {"x32Abi", NULL, js_x32abi, NULL, NULL, NULL, napi_default, NULL},
    {"spawn", NULL, js_spawn, NULL, NULL, NULL, napi_default, NULL},
    {"waitpid", NULL, js_waitpid, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
