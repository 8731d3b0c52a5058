/*
 * weir_io: the two file calls Node does not offer, for the partition log's page-cache drop-behind.
 *
 *   dropCache(fd, offset, length, sync) -> Promise<void>
 *     fdatasync(fd) when `sync`, then posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED), on
 *     libuv's thread pool (a sync writes back whatever is dirty; dropping a few MiB of pages frees
 *     thousands of them: neither belongs on a partition's thread). Only clean pages can be
 *     dropped, hence the sync first (skipped when every write was already synced). Rejects with an Error whose `code` is the errno name
 *     ("EIO", "EBADF", ...) and whose `syscall` names the call that failed.
 *
 * Context-aware (NAPI_MODULE_INIT), so partition worker threads can load it too.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int64_t offset;
  int64_t length;
  int sync;
  int err;
  const char *syscall;
} DropJob;

static void drop_execute(napi_env env, void *data) {
  (void)env;
  DropJob *job = data;
  if (job->sync && fdatasync(job->fd) != 0) {
    job->err = errno;
    job->syscall = "fdatasync";
    return;
  }
  int r = posix_fadvise(job->fd, (off_t)job->offset, (off_t)job->length, POSIX_FADV_DONTNEED);
  if (r != 0) {
    job->err = r;
    job->syscall = "posix_fadvise";
  }
}

static void drop_complete(napi_env env, napi_status status, void *data) {
  DropJob *job = data;
  if (status == napi_ok && job->err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    int err = status == napi_ok ? job->err : ECANCELED;
    const char *name = strerrorname_np(err);
    char text[256];
    snprintf(text, sizeof text, "%s: %s", job->syscall ? job->syscall : "dropCache", strerror(err));
    napi_value code, message, error, syscall;
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_create_string_utf8(env, job->syscall ? job->syscall : "dropCache", NAPI_AUTO_LENGTH, &syscall);
    napi_set_named_property(env, error, "syscall", syscall);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  const char *usage = "dropCache(fd, offset, length, sync) takes three non-negative integers and a boolean";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) return throw_type_error(env, usage);
  int32_t fd;
  int64_t offset, length;
  bool sync;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || napi_get_value_bool(env, argv[3], &sync) != napi_ok ||
      fd < 0 || offset < 0 || length < 0)
    return throw_type_error(env, usage);
  DropJob *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "dropCache: out of memory");
    return NULL;
  }
  job->fd = fd;
  job->offset = offset;
  job->length = length;
  job->sync = sync;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "weir.dropCache", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, drop_execute, drop_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  return exports;
}
