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
 *   sealRecords(buf, start, end) -> number
 *     Write each record's CRC32C (over its bytes [8, 4 + length), at byte 4; src/protocol/record.ts)
 *     for the whole records in buf[start, end), and return how many there were. The partition
 *     seals every appended record: in JavaScript (slicing-by-8) that was a quarter of the broker's
 *     CPU at max rate; here it is the SSE4.2 crc32 instruction where the CPU has it, else a table.
 *     Throws a RangeError, having written nothing, when the range is not a sequence of whole
 *     records (the log checks the framing first: this is a guard, not a validator).
 *
 *   verifyRecords(buf, start, end, firstOffset) -> number
 *     How many records from `start` check out (src/protocol/record.ts verifyRecords): each wholly
 *     inside buf[start, end), length >= 32, magic 1, offset firstOffset + i, and its CRC32C right.
 *     Stops at the first that fails. The log runs it over every record it serves, so a record
 *     whose bytes changed on disk is never delivered as data.
 *
 *   pwrite(fd, buf, from, length, position) -> number
 *     pwrite(2) of buf[from, from + length) at `position` of `fd`, retried on EINTR; returns the
 *     bytes written (short only where pwrite(2) is). The log writes each group commit with it: the
 *     same system call as fs.writeSync, without the argument checks, request setup and error
 *     context Node wraps around it (≈ 3 % of the broker's CPU at 5,000 msg/s, one write a
 *     request). Throws an Error with the errno name as `code` ("ENOSPC", "EIO", ...) and
 *     `syscall` "write", as fs.writeSync does.
 *
 *   lockFile(fd) -> boolean
 *     flock(fd, LOCK_EX | LOCK_NB), retried on EINTR: true when `fd` now holds the exclusive lock,
 *     false when another open file description holds it (EWOULDBLOCK). The kernel drops the lock
 *     when the last descriptor of `fd`'s open file description closes, the process's end (SIGKILL
 *     too) included: no stale locks. Node has no flock. Throws an Error with the errno name as
 *     `code` on any other failure.
 *
 *   raiseFileLimit() -> { before, soft, hard }
 *     Raise the process's soft RLIMIT_NOFILE to its hard limit (setrlimit) and return the soft
 *     limit before and after, and the hard one (-1 = unlimited). Throws an Error with the errno
 *     name as `code` when getrlimit or setrlimit fails.
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
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78; the same function as src/common/crc32c.ts) ---- */

static uint32_t crc_table[256];

static void crc_table_init(void) {
  for (uint32_t n = 0; n < 256; n++) {
    uint32_t c = n;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    crc_table[n] = c;
  }
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t n) {
  crc = ~crc;
  while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n) {
  uint64_t c = (uint32_t)~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
  }
  uint32_t c32 = (uint32_t)c;
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
#endif

static uint32_t (*crc32c_best)(uint32_t, const uint8_t *, size_t) = crc32c_table;

/* Once per process: every thread that loads the addon (each partition worker) runs the module init. */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  crc_table_init();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) crc32c_best = crc32c_sse42;
#endif
}

static uint32_t u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Record framing (src/protocol/record.ts): u32 length, u32 crc, then `length - 4` more bytes. */
#define REC_F_CRC 4
#define REC_F_OFFSET 8
#define REC_MIN_LENGTH 32

/* A Uint8Array argument: its bytes and length, else false. */
static bool uint8_array_arg(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  void *bytes;
  if (napi_get_typedarray_info(env, value, &type, length, &bytes, NULL, NULL) != napi_ok || type != napi_uint8_array) return false;
  *data = bytes;
  return true;
}

static napi_value seal_records(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint8_t *b;
  size_t length;
  uint32_t start, end;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !uint8_array_arg(env, argv[0], &b, &length) ||
      napi_get_value_uint32(env, argv[1], &start) != napi_ok || napi_get_value_uint32(env, argv[2], &end) != napi_ok) {
    return throw_type_error(env, "sealRecords(buf, start, end) takes a Uint8Array and two offsets into it");
  }
  if (start > end || end > length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sealRecords: [start, end) is not inside buf");
    return NULL;
  }
  /* Check the framing of the whole range before writing anything. */
  size_t records = 0;
  for (size_t at = start; at < end; records++) {
    uint32_t len = end - at >= 4 ? u32le(b + at) : 0;
    if (len < REC_MIN_LENGTH || len > end - at - 4) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sealRecords: the range is not a sequence of whole records");
      return NULL;
    }
    at += 4 + (size_t)len;
  }
  for (size_t at = start; at < end;) {
    uint32_t len = u32le(b + at);
    uint32_t crc = crc32c_best(0, b + at + REC_F_OFFSET, 4 + (size_t)len - REC_F_OFFSET);
    b[at + REC_F_CRC] = crc;
    b[at + REC_F_CRC + 1] = crc >> 8;
    b[at + REC_F_CRC + 2] = crc >> 16;
    b[at + REC_F_CRC + 3] = crc >> 24;
    at += 4 + (size_t)len;
  }
  return int64_result(env, (int64_t)records);
}

#define REC_HEADER_BYTES 36
#define REC_F_MAGIC 34

static napi_value verify_records(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint8_t *b;
  size_t length;
  uint32_t start, end;
  int64_t first;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || !uint8_array_arg(env, argv[0], &b, &length) ||
      napi_get_value_uint32(env, argv[1], &start) != napi_ok || napi_get_value_uint32(env, argv[2], &end) != napi_ok ||
      napi_get_value_int64(env, argv[3], &first) != napi_ok || first < 0) {
    return throw_type_error(env, "verifyRecords(buf, start, end, firstOffset) takes a Uint8Array, two offsets into it and a non-negative offset");
  }
  if (start > end || end > length) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "verifyRecords: [start, end) is not inside buf");
    return NULL;
  }
  int64_t n = 0;
  for (size_t at = start; end - at >= REC_HEADER_BYTES; n++) {
    uint32_t len = u32le(b + at);
    if (len < REC_MIN_LENGTH || len > end - at - 4) break;
    uint64_t offset = (uint64_t)u32le(b + at + REC_F_OFFSET) | (uint64_t)u32le(b + at + REC_F_OFFSET + 4) << 32;
    if (b[at + REC_F_MAGIC] != 1 || offset != (uint64_t)(first + n)) break;
    if (crc32c_best(0, b + at + REC_F_OFFSET, 4 + (size_t)len - REC_F_OFFSET) != u32le(b + at + REC_F_CRC)) break;
    at += 4 + (size_t)len;
  }
  return int64_result(env, n);
}

static napi_value pwrite_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  uint8_t *data;
  size_t size;
  int32_t fd;
  int64_t from, length, position;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      !uint8_array_arg(env, argv[1], &data, &size) ||
      napi_get_value_int64(env, argv[2], &from) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int64(env, argv[4], &position) != napi_ok || fd < 0) {
    return throw_type_error(env, "pwrite(fd, buf, from, length, position) takes a file descriptor, a Uint8Array and three non-negative integers");
  }
  if (from < 0 || length < 0 || position < 0 || (uint64_t)from + (uint64_t)length > size) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "pwrite: [from, from + length) is not inside buf, or position is negative");
    return NULL;
  }
  ssize_t n;
  do n = pwrite(fd, data + from, (size_t)length, (off_t)position);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    const char *name = strerrorname_np(err) ? strerrorname_np(err) : "EIO";
    char text[256];
    snprintf(text, sizeof text, "%s: %s, write", name, strerror(err));
    napi_value code, message, error, syscall;
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_create_string_utf8(env, "write", NAPI_AUTO_LENGTH, &syscall);
    napi_set_named_property(env, error, "syscall", syscall);
    napi_throw(env, error);
    return NULL;
  }
  return int64_result(env, (int64_t)n);
}

static napi_value lock_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    return throw_type_error(env, "lockFile(fd) takes a file descriptor");
  }
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, "flock");
  napi_value result;
  napi_get_boolean(env, r == 0, &result);
  return result;
}

static double rlim_number(rlim_t v) {
  return v == RLIM_INFINITY ? -1 : (double)v;
}

static napi_value raise_file_limit(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return throw_errno(env, errno, "getrlimit");
  rlim_t before = lim.rlim_cur;
  if (lim.rlim_cur != lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return throw_errno(env, errno, "setrlimit");
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return throw_errno(env, errno, "getrlimit");
  }
  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_double(env, rlim_number(before), &v);
  napi_set_named_property(env, result, "before", v);
  napi_create_double(env, rlim_number(lim.rlim_cur), &v);
  napi_set_named_property(env, result, "soft", v);
  napi_create_double(env, rlim_number(lim.rlim_max), &v);
  napi_set_named_property(env, result, "hard", v);
  return result;
}

NAPI_MODULE_INIT() {
  pthread_once(&crc_once, crc_init);
  napi_value fn;
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  napi_create_function(env, "setThreadSlice", NAPI_AUTO_LENGTH, set_thread_slice, NULL, &fn);
  napi_set_named_property(env, exports, "setThreadSlice", fn);
  napi_create_function(env, "setTimerSlack", NAPI_AUTO_LENGTH, set_timer_slack, NULL, &fn);
  napi_set_named_property(env, exports, "setTimerSlack", fn);
  napi_create_function(env, "sealRecords", NAPI_AUTO_LENGTH, seal_records, NULL, &fn);
  napi_set_named_property(env, exports, "sealRecords", fn);
  napi_create_function(env, "verifyRecords", NAPI_AUTO_LENGTH, verify_records, NULL, &fn);
  napi_set_named_property(env, exports, "verifyRecords", fn);
  napi_create_function(env, "pwrite", NAPI_AUTO_LENGTH, pwrite_bytes, NULL, &fn);
  napi_set_named_property(env, exports, "pwrite", fn);
  napi_create_function(env, "lockFile", NAPI_AUTO_LENGTH, lock_file, NULL, &fn);
  napi_set_named_property(env, exports, "lockFile", fn);
  napi_create_function(env, "raiseFileLimit", NAPI_AUTO_LENGTH, raise_file_limit, NULL, &fn);
  napi_set_named_property(env, exports, "raiseFileLimit", fn);
  return exports;
}
