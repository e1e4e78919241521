/*
 * Batched UDP datagram I/O for the SIP UDP transport (RFC 3261 §18).
 *
 * node:dgram costs one JavaScript callback, one Buffer, one address object and one
 * recvmsg(2) per datagram received, and a DNS lookup (for an IP literal: a nextTick), a
 * request object and one or two more ticks per datagram sent. Under a SIP load that is
 * most of the CPU of a server that does nothing else (bench/node-udp-floor.ts). Here the
 * socket is polled by libuv directly, every wake-up drains the socket with recvmmsg(2)
 * into one shared slab, and JavaScript is called with the slot of each datagram; a send is
 * one synchronous sendto(2).
 *
 * JavaScript side: packages/sip/src/transport/udp-batch.ts. Linux only (recvmmsg).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32
/* Datagrams read per wake-up before the event loop gets a turn (fairness with TCP/timers). */
#define MAX_ROUNDS 8
/* Per datagram in the meta array: length, port, family, address words 0..3 (IPv4: word 0). */
#define META_INTS 7

typedef struct {
  uv_poll_t poll;
  int fd;
  int family;
  int events;
  int started;
  int closed;
  int poll_closed;
  int finalized;
  napi_env env;
  napi_ref callback;
  napi_ref slab_ref;
  napi_ref meta_ref;
  napi_ref resource_ref;
  napi_async_context async_context;
  char *slab;
  size_t slot_bytes;
  int32_t *meta;
  struct mmsghdr msgs[BATCH];
  struct iovec iovs[BATCH];
  struct sockaddr_storage addrs[BATCH];
} udp_socket_t;

#define CHECK(env, call)                                                        \
  do {                                                                          \
    if ((call) != napi_ok) {                                                    \
      napi_throw_error((env), "ERR_UDP_BATCH", "udp-batch: " #call " failed"); \
      return NULL;                                                              \
    }                                                                           \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error, errno_value;
  /* libuv's error codes are the negated errno values on Unix: its names are Node's codes. */
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
  return NULL;
}

static udp_socket_t *unwrap(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "udp-batch: not a socket handle");
    return NULL;
  }
  return (udp_socket_t *)data;
}

static int to_sockaddr(int family, const char *text, uint32_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, text, &sin->sin_addr) != 1) return -1;
    *len = sizeof *sin;
    return 0;
  }
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons((uint16_t)port);
  if (strchr(text, ':') == NULL) {
    /* An IPv4 destination from a dual-stack socket: the v4-mapped address (RFC 4291 §2.5.5.2). */
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) != 1) return -1;
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&sin6->sin6_addr.s6_addr[12], &v4, 4);
  } else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) {
    return -1;
  }
  *len = sizeof *sin6;
  return 0;
}

/* open(family 4|6, address, port, recvBufferBytes, sendBufferBytes) -> [handle, boundPort] */
static void finalize_socket(napi_env env, void *data, void *hint);

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t family_number, port, recv_bytes, send_bytes;
  char address[64];
  size_t address_len;
  CHECK(env, napi_get_value_int32(env, argv[0], &family_number));
  CHECK(env, napi_get_value_string_latin1(env, argv[1], address, sizeof address, &address_len));
  CHECK(env, napi_get_value_int32(env, argv[2], &port));
  CHECK(env, napi_get_value_int32(env, argv[3], &recv_bytes));
  CHECK(env, napi_get_value_int32(env, argv[4], &send_bytes));
  int family = family_number == 6 ? AF_INET6 : AF_INET;

  struct sockaddr_storage bind_addr;
  socklen_t bind_len;
  if (to_sockaddr(family, address, (uint32_t)port, &bind_addr, &bind_len) != 0) return throw_errno(env, "bind address", EINVAL);
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (family == AF_INET6) {
    int off = 0; /* dual-stack, as node:dgram's udp6 */
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  }
  if (recv_bytes > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &recv_bytes, sizeof recv_bytes);
  if (send_bytes > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_bytes, sizeof send_bytes);
  if (bind(fd, (struct sockaddr *)&bind_addr, bind_len) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bound_len);
  int bound_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port : ((struct sockaddr_in6 *)&bound)->sin6_port);

  udp_socket_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->family = family;
  s->env = env;
  napi_value handle, port_value, result;
  CHECK(env, napi_create_external(env, s, finalize_socket, NULL, &handle));
  CHECK(env, napi_create_int32(env, bound_port, &port_value));
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_set_element(env, result, 0, handle));
  CHECK(env, napi_set_element(env, result, 1, port_value));
  return result;
}

static void call_js(udp_socket_t *s, int32_t count) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource, argument, result;
  if (napi_get_reference_value(env, s->callback, &callback) == napi_ok && napi_get_reference_value(env, s->resource_ref, &resource) == napi_ok &&
      napi_create_int32(env, count, &argument) == napi_ok) {
    if (napi_make_callback(env, s->async_context, resource, callback, 1, &argument, &result) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  udp_socket_t *s = (udp_socket_t *)poll->data;
  if (s->closed) return;
  if (status < 0) {
    /* libuv asks the user to stop a poll that failed (only a descriptor gone bad does). */
    uv_poll_stop(poll);
    return;
  }
  if (events & UV_WRITABLE) {
    call_js(s, -1);
    if (s->closed) return;
  }
  if (!(events & UV_READABLE)) return;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    for (int i = 0; i < BATCH; i++) {
      s->iovs[i].iov_base = s->slab + (size_t)i * s->slot_bytes;
      s->iovs[i].iov_len = s->slot_bytes;
      struct msghdr *h = &s->msgs[i].msg_hdr;
      h->msg_name = &s->addrs[i];
      h->msg_namelen = sizeof s->addrs[i];
      h->msg_iov = &s->iovs[i];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* EAGAIN, or an error a datagram socket can ignore */
    for (int i = 0; i < n; i++) {
      int32_t *m = s->meta + i * META_INTS;
      m[0] = (int32_t)s->msgs[i].msg_len; /* never truncated: a slot holds any UDP payload */
      struct sockaddr_storage *a = &s->addrs[i];
      if (a->ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)a;
        m[1] = ntohs(sin->sin_port);
        m[2] = 4;
        uint32_t host = ntohl(sin->sin_addr.s_addr);
        m[3] = (int32_t)host;
      } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)a;
        m[1] = ntohs(sin6->sin6_port);
        m[2] = 6;
        for (int w = 0; w < 4; w++) {
          uint32_t word;
          memcpy(&word, &sin6->sin6_addr.s6_addr[w * 4], 4);
          m[3 + w] = (int32_t)ntohl(word);
        }
      }
    }
    /*
     * One call per datagram, as node:dgram makes: the microtasks and ticks a message queues
     * (a registrar's awaited lookup, a proxy's early forward) run before the next message,
     * not after the whole batch. The syscall and the allocations are still batched.
     */
    for (int i = 0; i < n && !s->closed; i++) call_js(s, i);
    if (s->closed || n < BATCH) return;
  }
}

/* start(handle, slab: Buffer, slotBytes, meta: Int32Array, onEvent(slot)): slot -1 = writable */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  if (s->started || s->closed) {
    napi_throw_error(env, "ERR_UDP_BATCH", "udp-batch: socket already started or closed");
    return NULL;
  }
  void *slab;
  size_t slab_len;
  int32_t slot_bytes;
  CHECK(env, napi_get_buffer_info(env, argv[1], &slab, &slab_len));
  CHECK(env, napi_get_value_int32(env, argv[2], &slot_bytes));
  napi_typedarray_type type;
  size_t meta_len;
  void *meta;
  napi_value meta_buffer;
  size_t meta_offset;
  CHECK(env, napi_get_typedarray_info(env, argv[3], &type, &meta_len, &meta, &meta_buffer, &meta_offset));
  if (type != napi_int32_array || meta_len < BATCH * META_INTS || slot_bytes <= 0 || slab_len < (size_t)slot_bytes * BATCH) {
    napi_throw_range_error(env, "ERR_UDP_BATCH", "udp-batch: slab or meta too small");
    return NULL;
  }
  s->slab = slab;
  s->slot_bytes = (size_t)slot_bytes;
  s->meta = meta;
  napi_value resource, name;
  CHECK(env, napi_create_object(env, &resource));
  CHECK(env, napi_create_string_utf8(env, "PUSHCALL_UDP", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, resource, name, &s->async_context));
  CHECK(env, napi_create_reference(env, resource, 1, &s->resource_ref));
  CHECK(env, napi_create_reference(env, argv[1], 1, &s->slab_ref));
  CHECK(env, napi_create_reference(env, argv[3], 1, &s->meta_ref));
  CHECK(env, napi_create_reference(env, argv[4], 1, &s->callback));
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &s->poll, s->fd) != 0) return throw_errno(env, "uv_poll_init", EIO);
  s->poll.data = s;
  s->events = UV_READABLE;
  uv_poll_start(&s->poll, s->events, on_poll);
  s->started = 1;
  return NULL;
}

/* send(handle, data: Buffer, port, address) -> 0, or the errno (EAGAIN: wait for writable) */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  void *data;
  size_t length;
  uint32_t port;
  char address[64];
  size_t address_len;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &length));
  CHECK(env, napi_get_value_uint32(env, argv[2], &port));
  CHECK(env, napi_get_value_string_latin1(env, argv[3], address, sizeof address, &address_len));
  int result = 0;
  struct sockaddr_storage to;
  socklen_t to_len;
  if (s->closed) {
    result = EBADF;
  } else if (to_sockaddr(s->family, address, port, &to, &to_len) != 0) {
    result = EINVAL;
  } else {
    ssize_t sent;
    do sent = sendto(s->fd, data, length, MSG_DONTWAIT, (struct sockaddr *)&to, to_len);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) result = errno;
  }
  napi_value out;
  CHECK(env, napi_create_int32(env, result, &out));
  return out;
}

/* watchWritable(handle, on): poll for writability after a send returned EAGAIN. */
static napi_value js_watch_writable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  bool on;
  CHECK(env, napi_get_value_bool(env, argv[1], &on));
  if (!s->started || s->closed) return NULL;
  int events = on ? (UV_READABLE | UV_WRITABLE) : UV_READABLE;
  if (events != s->events) {
    s->events = events;
    uv_poll_start(&s->poll, events, on_poll);
  }
  return NULL;
}

/* bufferSizes(handle) -> [SO_RCVBUF, SO_SNDBUF] as granted by the kernel */
static napi_value js_buffer_sizes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  int recv_bytes = 0, send_bytes = 0;
  socklen_t len = sizeof recv_bytes;
  getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &recv_bytes, &len);
  len = sizeof send_bytes;
  getsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &send_bytes, &len);
  napi_value result, a, b;
  CHECK(env, napi_create_array_with_length(env, 2, &result));
  CHECK(env, napi_create_int32(env, recv_bytes, &a));
  CHECK(env, napi_create_int32(env, send_bytes, &b));
  CHECK(env, napi_set_element(env, result, 0, a));
  CHECK(env, napi_set_element(env, result, 1, b));
  return result;
}

/*
 * The struct is freed once nothing refers to it: the JavaScript handle was collected
 * (finalized) and libuv has let go of the poll handle (or it was never started).
 */
static void free_if_unused(udp_socket_t *s) {
  if (s->finalized && (!s->started || s->poll_closed)) free(s);
}

static void on_poll_closed(uv_handle_t *handle) {
  udp_socket_t *s = (udp_socket_t *)handle->data;
  close(s->fd);
  s->fd = -1;
  s->poll_closed = 1;
  free_if_unused(s);
}

static void release_references(udp_socket_t *s) {
  napi_env env = s->env;
  napi_ref *refs[] = {&s->callback, &s->slab_ref, &s->meta_ref, &s->resource_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) {
      napi_delete_reference(env, *refs[i]);
      *refs[i] = NULL;
    }
  }
  if (s->async_context != NULL) {
    napi_async_destroy(env, s->async_context);
    s->async_context = NULL;
  }
}

static void close_socket(udp_socket_t *s) {
  if (s->closed) return;
  s->closed = 1;
  release_references(s);
  if (s->started) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  } else {
    close(s->fd);
    s->fd = -1;
  }
}

/* close(handle): stops polling; the descriptor is closed once libuv lets go of it. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_socket_t *s = unwrap(env, argv[0]);
  if (s != NULL) close_socket(s);
  return NULL;
}

static void finalize_socket(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  udp_socket_t *s = (udp_socket_t *)data;
  close_socket(s);
  s->finalized = 1;
  free_if_unused(s);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"watchWritable", NULL, js_watch_writable, NULL, NULL, NULL, napi_default, NULL},
      {"bufferSizes", NULL, js_buffer_sizes, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value batch, meta_ints;
  napi_create_int32(env, BATCH, &batch);
  napi_create_int32(env, META_INTS, &meta_ints);
  napi_set_named_property(env, exports, "BATCH", batch);
  napi_set_named_property(env, exports, "META_INTS", meta_ints);
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
