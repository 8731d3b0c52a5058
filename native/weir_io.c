/*
 * weir_io: the system calls weir needs and Node does not offer.
 *
 *   dropCache(fd, offset, length, sync) -> Promise<void>
 *     fdatasync(fd) when `sync`, then posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED), on
 *     libuv's thread pool (a sync writes back whatever is dirty; dropping a few MiB of pages frees
 *     thousands of them: neither belongs on a partition's thread). Only clean pages can be
 *     dropped, hence the sync first (skipped when every write was already synced). Rejects with an Error whose `code` is the errno name
 *     ("EIO", "EBADF", ...) and whose `syscall` names the call that failed.
 *
 *   setThreadSlice(ns) -> number
 *     Ask the kernel for an EEVDF time slice of `ns` for the CALLING thread (sched_setattr with
 *     SCHED_OTHER and sched_runtime, Linux >= 6.12; nice and policy unchanged). A woken thread with
 *     a shorter slice than the running one preempts it instead of waiting for that one's slice to
 *     end: it is about wake-up latency, not CPU share. Returns the slice the kernel reports back
 *     (sched_getattr), 0 where the kernel has no custom slices; throws an Error with the errno name
 *     as `code` when the call fails.
 *
 *   setTimerSlack(ns) -> number
 *     Set the CALLING thread's timer slack (prctl PR_SET_TIMERSLACK): how late the kernel may fire
 *     the thread's timed sleeps to batch wake-ups, 50 us by default. A thread that paces itself
 *     with sub-millisecond sleeps wants 1 ns. Returns the slack the kernel reports back
 *     (PR_GET_TIMERSLACK); throws an Error with the errno name as `code` when the call fails.
 *
 * Context-aware (NAPI_MODULE_INIT), so partition worker threads can load it too.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* struct sched_attr (include/uapi/linux/sched/types.h); glibc 2.36 has no wrapper. */
struct weir_sched_attr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

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

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char text[256];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  const char *name = strerrorname_np(err);
  napi_throw_error(env, name ? name : "EIO", text);
  return NULL;
}

/* The one argument of setThreadSlice / setTimerSlack: a positive integer, else false. */
static bool positive_ns_arg(napi_env env, napi_callback_info info, int64_t *ns) {
  size_t argc = 1;
  napi_value argv[1];
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 &&
         napi_get_value_int64(env, argv[0], ns) == napi_ok && *ns > 0;
}

static napi_value int64_result(napi_env env, int64_t v) {
  napi_value result;
  napi_create_int64(env, v, &result);
  return result;
}

static napi_value set_thread_slice(napi_env env, napi_callback_info info) {
  int64_t ns;
  if (!positive_ns_arg(env, info, &ns)) return throw_type_error(env, "setThreadSlice(ns) takes a positive integer");
  struct weir_sched_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return throw_errno(env, errno, "sched_getattr");
  if (attr.sched_policy != SCHED_OTHER) {
    napi_throw_error(env, "ENOTSUP", "setThreadSlice: the thread's policy is not SCHED_OTHER; left as it is");
    return NULL;
  }
  attr.size = sizeof attr;
  attr.sched_flags = 0;
  attr.sched_runtime = (uint64_t)ns;
  if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0) return throw_errno(env, errno, "sched_setattr");
  memset(&attr, 0, sizeof attr);
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return throw_errno(env, errno, "sched_getattr");
  return int64_result(env, (int64_t)attr.sched_runtime);
}

static napi_value set_timer_slack(napi_env env, napi_callback_info info) {
  int64_t ns;
  if (!positive_ns_arg(env, info, &ns)) return throw_type_error(env, "setTimerSlack(ns) takes a positive integer");
  if (prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0) != 0) return throw_errno(env, errno, "prctl");
  int got = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (got < 0) return throw_errno(env, errno, "prctl");
  return int64_result(env, (int64_t)got);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  napi_create_function(env, "setThreadSlice", NAPI_AUTO_LENGTH, set_thread_slice, NULL, &fn);
  napi_set_named_property(env, exports, "setThreadSlice", fn);
  napi_create_function(env, "setTimerSlack", NAPI_AUTO_LENGTH, set_timer_slack, NULL, &fn);
  napi_set_named_property(env, exports, "setTimerSlack", fn);
  return exports;
}
