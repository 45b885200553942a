/*
 * berth_sys: the few system calls Node.js does not expose (flock, mount, umount2, mknod, xattrs), and a probe of
 * which system call ABIs the kernel runs (x32Abi).
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

/* x32Abi(): whether this kernel executes x32 system calls (getpid with the x32 bit set); false on non-x86_64. */
static napi_value js_x32abi(napi_env env, napi_callback_info info) {
  (void)info;
  bool yes = false;
#ifdef __x86_64__
  errno = 0;
  long r = syscall(0x40000000L | SYS_getpid);
  yes = !(r == -1 && errno == ENOSYS);
#endif
  napi_value v;
  napi_get_boolean(env, yes, &v);
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
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
