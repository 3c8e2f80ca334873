/*
 * TLS for clients: interception of CONNECT to allowed hosts.  airlock's CA
 * (forward.ca_cert/ca_key) signs a leaf certificate for each host name,
 * minted on first use and kept for the life of the process; all leaves
 * share one key generated at start.  Clients trust the CA (Kibana through
 * NODE_EXTRA_CA_CERTS); upstream TLS is verified separately, by libcurl,
 * against upstream.ca_file, so content only ever comes from an upstream
 * that proved its name (or from the cache it filled).
 */
#ifndef AIRLOCK_PROXY_TLS_H
#define AIRLOCK_PROXY_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include "policy/config.h"

/* Load the CA; 0 or -errno with a message.  No-op when no CA is configured. */
int tls_init(const struct al_config *cfg, char *err, size_t errlen);
void tls_shutdown(void);

/*
 * Whether host:port's upstream proved its identity (verified TLS handshake)
 * in the last 10 minutes; and record that it did.  Interception mints a
 * certificate for a name only after such a proof, unless the upstream is
 * offline (then the cache answers, and nothing comes from the upstream).
 */
int tls_upstream_proven(const char *host, int port);
void tls_upstream_prove(const char *host, int port);

/* A server-side SSL for host, ready for the handshake; NULL on failure. */
SSL *tls_intercept_ssl(const char *host);

/*
 * The SSL_CTX of an HTTPS listener: its certificate chain and key (the key
 * file must not be readable by others), TLS min_version and up.  NULL with
 * a message on failure.  Caller frees.
 */
SSL_CTX *tls_listener_ctx(const struct al_listen *ls, char *err, size_t errlen);

/*
 * End a TLS connection from our side once its last response is written:
 * send close_notify (RFC 8446 6.1: before closing the write side; there is
 * no need to wait for the peer's) and shut the socket's write side, so a
 * client reading to EOF gets it with the response.  The caller's output
 * buffer must be empty.  On the HTTPS listener every record is then in
 * the kernel: the alert is written and the socket shut now, 0.  Inside an
 * intercepted CONNECT (a filter over the client's socket bufferevent) the
 * records may still be queued below: the alert goes after them and the
 * socket is shut once they are written, -EINPROGRESS (0 if nothing was
 * queued).  -EAGAIN when the alert did not fit the socket buffer now,
 * -ENOTSUP when bev is not TLS: the caller then keeps the connection until
 * the peer closes.  In every case the caller still owns bev and frees it
 * (after draining what the peer sends, so that unread input does not turn
 * the close into a reset).
 */
struct bufferevent;
int tls_close_notify(struct bufferevent *bev);

/*
 * The writing half of an HTTPS listener's connection, driven as nginx
 * drives it (issue 33): the caller queues its response in tls_writer_buf
 * and calls tls_writer_flush, which SSL_writes it at once, from the
 * caller's own turn of the loop: a head and a small body leave as one
 * record in one write(2), a large body as it lies in the cache's map (by
 * reference, not copied).  libevent's bufferevent_openssl still does the
 * handshake and the reading; its own output buffer stays empty, so it
 * never registers for writability per response.  Only when the socket is
 * full does the writer wait for it (one event, kept while a body streams,
 * with the idle timeout given); then cb(arg, EV_WRITE) when the queue fell
 * to `low` bytes or fewer, or cb(arg, EV_TIMEOUT) / cb(arg, 0) (error)
 * instead.  The caller owns the writer and frees it before the
 * bufferevent (which owns the SSL and the socket); freeing it releases
 * what is still queued.
 */
struct tls_writer;
struct tls_writer *tls_writer_new(struct bufferevent *bev, size_t low, void (*cb)(void *arg, short what), void *arg);
struct evbuffer *tls_writer_buf(struct tls_writer *tw);
/* 0: written, or the rest waits for the socket; -EIO: the connection is broken (the caller closes it). */
int tls_writer_flush(struct tls_writer *tw, const struct timeval *idle);
void tls_writer_free(struct tls_writer *tw);

/* `airlock ca init DIR`: write ca.key (0600) and ca.crt. 0 or -errno. */
int tls_ca_init(const char *dir, char *err, size_t errlen);

/*
 * Every check tls_init and tls_listener_ctx make (files readable, PEM
 * parsed, key permissions, key matches certificate), keeping nothing.  On
 * failure writes the message and, into key, the configuration key it is
 * about ("forward.ca_key", "listen[1].tls.cert").
 */
int tls_check_files(const struct al_config *cfg, char *err, size_t errlen, char *key, size_t keylen);

#endif
