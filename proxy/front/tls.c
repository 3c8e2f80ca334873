#include "proxy/front/tls.h"
#include "cache/bundle.h"
#include "proxy/runtime/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEAF_DAYS 30
#define MAX_LEAVES 1024

static SSL_CTX *server_ctx;
static X509 *ca_cert;
static EVP_PKEY *ca_key, *leaf_key;
static pthread_mutex_t leaves_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char host[256];
	X509 *cert;
	time_t expires;
} leaves[MAX_LEAVES];
static int nleaves;

static void ossl_err(char *err, size_t errlen, const char *what)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, buf);
}

/* Keys must not be readable by others: refuse the bits in mask on a key file. */
static int check_key_perms_mask(const char *path, mode_t mask, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (st.st_mode & mask) {
		snprintf(err, errlen, "%s: permissions %03o let others read the key; chmod 600 it",
		    path, (unsigned)(st.st_mode & 0777));
		return -EPERM;
	}
	return 0;
}

static int check_key_perms(const char *path, char *err, size_t errlen)
{
	return check_key_perms_mask(path, 0077, err, errlen);
}

SSL_CTX *tls_listener_ctx(const struct al_listen *ls, char *err, size_t errlen)
{
	static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
	SSL_CTX *ctx;

	/* group-readable is the Debian ssl-cert convention; other-readable is refused */
	if (check_key_perms_mask(ls->tls_key, 0007, err, errlen) != 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ossl_err(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, ls->tls_cert) != 1) {
		ossl_err(err, errlen, ls->tls_cert);
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, ls->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ossl_err(err, errlen, ls->tls_key);
		goto err;
	}
	/* OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; an operator who asks for them gets them. */
	if (ls->tls_min < 12)
		SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_min_proto_version(ctx, versions[ls->tls_min - 10]);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	return ctx;
err:
	SSL_CTX_free(ctx);
	return NULL;
}

static EVP_PKEY *new_ec_key(void)
{
	return EVP_EC_gen("P-256");
}

int tls_init(const struct al_config *cfg, char *err, size_t errlen)
{
	FILE *f;
	int rc;

	if (cfg->forward_ca_cert == NULL || cfg->forward_ca_key == NULL)
		return 0;
	if ((rc = check_key_perms(cfg->forward_ca_key, err, errlen)) != 0)
		return rc;
	if ((f = fopen(cfg->forward_ca_cert, "r")) == NULL) {
		snprintf(err, errlen, "forward.ca_cert %s: %s", cfg->forward_ca_cert, strerror(errno));
		return -errno;
	}
	ca_cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if ((f = fopen(cfg->forward_ca_key, "r")) == NULL) {
		snprintf(err, errlen, "forward.ca_key %s: %s", cfg->forward_ca_key, strerror(errno));
		return -errno;
	}
	ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (ca_cert == NULL || ca_key == NULL) {
		ossl_err(err, errlen, "reading the interception CA");
		return -EINVAL;
	}
	if (X509_check_private_key(ca_cert, ca_key) != 1) {
		snprintf(err, errlen, "forward.ca_key does not belong to forward.ca_cert");
		return -EINVAL;
	}
	leaf_key = new_ec_key();
	server_ctx = SSL_CTX_new(TLS_server_method());
	if (leaf_key == NULL || server_ctx == NULL) {
		ossl_err(err, errlen, "setting up TLS");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION);
	/* Kibana's and the agents' clients speak HTTP/1.1 through the proxy; offer only that. */
	SSL_CTX_set_options(server_ctx, SSL_OP_NO_RENEGOTIATION);
	return 0;
}

/*
 * The checks tls_init and tls_listener_ctx make, with nothing kept: for
 * check-config and the start-up preflight.  On failure *key names the
 * configuration key the message is about.
 */
int tls_check_files(const struct al_config *cfg, char *err, size_t errlen, char *key, size_t keylen)
{
	if (cfg->forward_ca_cert != NULL && cfg->forward_ca_key != NULL) {
		X509 *cert = NULL;
		EVP_PKEY *pk = NULL;
		FILE *f;
		int rc = -EINVAL;

		snprintf(key, keylen, "forward.ca_cert");
		if ((f = fopen(cfg->forward_ca_cert, "r")) == NULL) {
			snprintf(err, errlen, "forward.ca_cert %s: %s", cfg->forward_ca_cert, strerror(errno));
			return -errno;
		}
		cert = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		if (cert == NULL) {
			snprintf(err, errlen, "forward.ca_cert %s: not a PEM certificate", cfg->forward_ca_cert);
			return -EINVAL;
		}
		snprintf(key, keylen, "forward.ca_key");
		if (check_key_perms(cfg->forward_ca_key, err, errlen) != 0)
			goto ca_out;
		if ((f = fopen(cfg->forward_ca_key, "r")) == NULL) {
			snprintf(err, errlen, "forward.ca_key %s: %s", cfg->forward_ca_key, strerror(errno));
			goto ca_out;
		}
		pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (pk == NULL)
			snprintf(err, errlen, "forward.ca_key %s: not a PEM private key", cfg->forward_ca_key);
		else if (X509_check_private_key(cert, pk) != 1)
			snprintf(err, errlen, "forward.ca_key does not belong to forward.ca_cert");
		else
			rc = 0;
ca_out:
		X509_free(cert);
		EVP_PKEY_free(pk);
		ERR_clear_error();
		if (rc != 0)
			return rc;
	}
	for (int j = 0; j < cfg->nlisten; j++) {
		const struct al_listen *ls = &cfg->listen[j];
		SSL_CTX *ctx;
		char msg[400];
		FILE *f;

		if (ls->tls_cert == NULL)
			continue;
		snprintf(key, keylen, "listen[%d].tls.cert", j);
		if ((f = fopen(ls->tls_cert, "r")) == NULL) {
			snprintf(err, errlen, "listen %s:%d: tls.cert %s: %s", ls->host, ls->port, ls->tls_cert, strerror(errno));
			return -EINVAL;
		}
		fclose(f);
		snprintf(key, keylen, "listen[%d].tls.key", j);
		if ((ctx = tls_listener_ctx(ls, msg, sizeof(msg))) == NULL) {
			snprintf(err, errlen, "listen %s:%d: %s", ls->host, ls->port, msg);
			ERR_clear_error();
			return -EINVAL;
		}
		SSL_CTX_free(ctx);
	}
	return 0;
}

void tls_shutdown(void)
{
	for (int i = 0; i < nleaves; i++)
		X509_free(leaves[i].cert);
	nleaves = 0;
	SSL_CTX_free(server_ctx);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	server_ctx = NULL;
	ca_cert = NULL;
	ca_key = leaf_key = NULL;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex == NULL)
		return -1;
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

/* A new v3 certificate: random serial, valid from an hour ago for `days`, with pubkey and subject CN. */
static X509 *new_cert(EVP_PKEY *pubkey, long days, const char *cn)
{
	X509 *c = X509_new();
	uint8_t serial[16];
	BIGNUM *bn;

	if (c == NULL || RAND_bytes(serial, sizeof(serial)) != 1) {
		X509_free(c);
		return NULL;
	}
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_set_version(c, 2);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), days * 86400);
	X509_set_pubkey(c, pubkey);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	return c;
}

static X509 *mint(const char *host)
{
	X509 *c = new_cert(leaf_key, LEAF_DAYS, host);
	char san[300];
	unsigned char ip[16];
	int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;

	if (c == NULL)
		goto err;
	X509_set_issuer_name(c, X509_get_subject_name(ca_cert));
	snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", host);
	if (add_ext(c, ca_cert, NID_subject_alt_name, san) || add_ext(c, ca_cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(c, ca_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
	    add_ext(c, ca_cert, NID_ext_key_usage, "serverAuth") ||
	    add_ext(c, ca_cert, NID_subject_key_identifier, "hash") ||
	    add_ext(c, ca_cert, NID_authority_key_identifier, "keyid:always"))
		goto err;
	if (X509_sign(c, ca_key, EVP_sha256()) == 0)
		goto err;
	return c;
err:
	X509_free(c);
	return NULL;
}

/* The leaf for host, minted once and reused until it nears expiry. */
static X509 *leaf_for(const char *host)
{
	time_t now = time(NULL);
	X509 *c = NULL;
	int slot = -1;

	pthread_mutex_lock(&leaves_mu);
	for (int i = 0; i < nleaves; i++) {
		if (strcasecmp(leaves[i].host, host) == 0) {
			if (leaves[i].expires > now + 86400) {
				c = leaves[i].cert;
				X509_up_ref(c);
				goto out;
			}
			slot = i;
		}
	}
	c = mint(host);
	if (c == NULL)
		goto out;
	if (slot < 0)
		slot = nleaves < MAX_LEAVES ? nleaves++ : (int)(now % MAX_LEAVES);
	X509_free(leaves[slot].cert);
	snprintf(leaves[slot].host, sizeof(leaves[slot].host), "%s", host);
	leaves[slot].cert = c;
	leaves[slot].expires = now + (time_t)LEAF_DAYS * 86400;
	X509_up_ref(c);
	al_info("tls", "minted an interception certificate for %s", host);
out:
	pthread_mutex_unlock(&leaves_mu);
	return c;
}

#define PROOF_TTL 600
static struct {
	char hostport[300];
	time_t until;
} proofs[256];
static pthread_mutex_t proofs_mu = PTHREAD_MUTEX_INITIALIZER;

int tls_upstream_proven(const char *host, int port)
{
	char hp[300];
	time_t now = time(NULL);
	int ok = 0;

	snprintf(hp, sizeof(hp), "%s:%d", host, port);
	pthread_mutex_lock(&proofs_mu);
	for (size_t i = 0; i < sizeof(proofs) / sizeof(proofs[0]); i++)
		if (proofs[i].until > now && strcasecmp(proofs[i].hostport, hp) == 0)
			ok = 1;
	pthread_mutex_unlock(&proofs_mu);
	return ok;
}

void tls_upstream_prove(const char *host, int port)
{
	size_t slot = 0;
	time_t now = time(NULL);

	pthread_mutex_lock(&proofs_mu);
	for (size_t i = 0; i < sizeof(proofs) / sizeof(proofs[0]); i++) {
		if (proofs[i].until < proofs[slot].until)
			slot = i;
		if (strcasecmp(proofs[i].hostport, host) == 0) {
			slot = i;
			break;
		}
	}
	snprintf(proofs[slot].hostport, sizeof(proofs[slot].hostport), "%s:%d", host, port);
	proofs[slot].until = now + PROOF_TTL;
	pthread_mutex_unlock(&proofs_mu);
}

SSL *tls_intercept_ssl(const char *host)
{
	X509 *leaf;
	SSL *ssl;

	if (server_ctx == NULL || (leaf = leaf_for(host)) == NULL)
		return NULL;
	ssl = SSL_new(server_ctx);
	if (ssl == NULL || SSL_use_certificate(ssl, leaf) != 1 || SSL_use_PrivateKey(ssl, leaf_key) != 1 ||
	    SSL_add1_chain_cert(ssl, ca_cert) != 1) {
		SSL_free(ssl);
		ssl = NULL;
	}
	X509_free(leaf);
	return ssl;
}

int tls_ca_init(const char *dir, char *err, size_t errlen)
{
	char kp[4096], cp[4096];
	EVP_PKEY *key = NULL;
	X509 *c = NULL;
	FILE *f = NULL;
	int rc = -EIO;

	snprintf(kp, sizeof(kp), "%s/ca.key", dir);
	snprintf(cp, sizeof(cp), "%s/ca.crt", dir);
	if ((rc = al_new_key_files(dir, 0755, kp, cp, "CA", err, errlen)) != 0)
		return rc;
	rc = -EIO;
	key = EVP_EC_gen("P-256");
	c = key ? new_cert(key, 10L * 365, "airlock interception CA") : NULL;
	if (key == NULL || c == NULL)
		goto err;
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "O", MBSTRING_ASC,
	    (const unsigned char *)"airlock", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	if (add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(c, c, NID_subject_key_identifier, "hash") ||
	    X509_sign(c, key, EVP_sha256()) == 0)
		goto err;
	if (al_write_private_key(kp, key, err, errlen) != 0)
		goto out;
	f = fopen(cp, "w");
	if (f == NULL || !PEM_write_X509(f, c)) {
		snprintf(err, errlen, "writing %s: %s", cp, strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
err:
	ossl_err(err, errlen, "creating the CA");
out:
	if (f)
		fclose(f);
	X509_free(c);
	EVP_PKEY_free(key);
	return rc;
}

/* The last bytes below an intercepted CONNECT's TLS (its close_notify) reached the socket: shut its write side. */
static void shut_when_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	if (info->n_deleted == 0 || evbuffer_get_length(buf) > 0)
		return;
	shutdown((int)(intptr_t)arg, SHUT_WR);
	evbuffer_remove_cb(buf, shut_when_drained, arg);
}

int tls_close_notify(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct bufferevent *below = bufferevent_get_underlying(bev);
	evutil_socket_t fd = bufferevent_getfd(below != NULL ? below : bev);
	int rc;

	if (ssl == NULL || fd < 0)
		return -ENOTSUP;
	ERR_clear_error();
	rc = SSL_shutdown(ssl); /* 0: our close_notify is sent (or queued below); 1: both were */
	if (rc < 0) {
		ERR_clear_error();
		return -EAGAIN;
	}
	if (BIO_method_type(SSL_get_wbio(ssl)) == BIO_TYPE_BUFFER && BIO_flush(SSL_get_wbio(ssl)) <= 0)
		return -EAGAIN; /* the TLS writer's wait writes the rest (the alert last); no shutdown */
	if (below != NULL) {
		/*
		 * A filter's records (the response, then the alert) sit in the
		 * socket bufferevent below until it writes them: shut the
		 * socket's write side once that buffer drains, not before.
		 */
		struct evbuffer *out = bufferevent_get_output(below);

		if (evbuffer_get_length(out) == 0) {
			shutdown(fd, SHUT_WR);
			return 0;
		}
		if (evbuffer_add_cb(out, shut_when_drained, (void *)(intptr_t)fd) == NULL)
			return -ENOMEM;
		return -EINPROGRESS;
	}
	shutdown(fd, SHUT_WR);
	return 0;
}

/* One TLS record's worth of plaintext (RFC 8446 5.1), what nginx's ssl_buffer_size defaults to. */
#define TLS_RECORD 16384
/* The most one SSL_write is given (OpenSSL cuts it into records). */
#define TLS_WRITE_MAX (256 * 1024)

struct tls_writer {
	struct event_base *base;
	SSL *ssl;
	evutil_socket_t fd;
	struct evbuffer *buf;
	struct event *ev;        /* the socket's writability while SSL_write would block */
	BIO *bbio;               /* while a large body streams: records gathered for one write(2) */
	struct timeval idle;
	size_t low;
	void (*cb)(void *arg, short what);
	void *arg;
};

static void tls_writer_ready(evutil_socket_t fd, short what, void *arg)
{
	struct tls_writer *tw = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		tw->cb(tw->arg, EV_TIMEOUT);
		return;
	}
	if (tls_writer_flush(tw, &tw->idle) != 0) {
		tw->cb(tw->arg, 0);
		return;
	}
	if (evbuffer_get_length(tw->buf) <= tw->low)
		tw->cb(tw->arg, EV_WRITE);
}

struct tls_writer *tls_writer_new(struct bufferevent *bev, size_t low, void (*cb)(void *arg, short what), void *arg)
{
	struct tls_writer *tw = calloc(1, sizeof(*tw));

	if (tw == NULL)
		return NULL;
	tw->base = bufferevent_get_base(bev);
	tw->ssl = bufferevent_openssl_get_ssl(bev);
	tw->fd = bufferevent_getfd(bev);
	tw->buf = evbuffer_new();
	tw->low = low;
	tw->cb = cb;
	tw->arg = arg;
	if (tw->ssl == NULL || tw->fd < 0 || tw->buf == NULL) {
		tls_writer_free(tw);
		return NULL;
	}
	SSL_set_mode(tw->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
	return tw;
}

struct evbuffer *tls_writer_buf(struct tls_writer *tw)
{
	return tw->buf;
}

/*
 * A large body: OpenSSL writes each 16 KiB record with its own write(2), a
 * TCP push each on loopback; libevent's filter gathered records in its
 * evbuffer and wrote them with one writev, which the interception path had
 * (bench/connect.py: 100 KiB hits cost 19% more without it).  A buffering
 * BIO over the socket gathers them while a body streams (one copy, as the
 * filter's evbuffer made), and goes when the body is out, so an idle
 * keep-alive connection holds no buffer.  References: the socket BIO's
 * wbio reference passes to the chain (SSL_set0_wbio frees the old wbio's),
 * and back.
 */
#define TLS_GATHER (64 * 1024)

/* Without memory for it, or with OpenSSL's own handshake buffer in place, records go as they are. */
static void gather_on(struct tls_writer *tw)
{
	BIO *sock = SSL_get_wbio(tw->ssl), *b;

	if (tw->bbio != NULL || sock == NULL || BIO_next(sock) != NULL || (b = BIO_new(BIO_f_buffer())) == NULL)
		return;
	if (BIO_set_write_buffer_size(b, TLS_GATHER) != 1 || !BIO_up_ref(sock)) {
		BIO_free(b);
		return;
	}
	BIO_push(b, sock);
	SSL_set0_wbio(tw->ssl, b);
	tw->bbio = b;
}

static void gather_off(struct tls_writer *tw)
{
	BIO *sock = BIO_next(tw->bbio);

	BIO_pop(tw->bbio);
	SSL_set0_wbio(tw->ssl, sock); /* frees the buffering BIO */
	tw->bbio = NULL;
}

/* 1: what the buffering BIO gathered is written (or there is none); 0: the socket is full; -EIO. */
static int gather_flush(struct tls_writer *tw)
{
	if (tw->bbio == NULL)
		return 1;
	if (BIO_flush(tw->bbio) > 0) {
		gather_off(tw);
		return 1;
	}
	return BIO_should_retry(tw->bbio) ? 0 : -EIO;
}

/*
 * The socket is full: go on when it takes more, within the idle timeout.
 * The event stays while a large body streams (persistent: no epoll_ctl per
 * wait; its timeout restarts each time it fires) and goes when the buffer
 * is empty.
 */
static int tls_writer_wait(struct tls_writer *tw)
{
	if (tw->ev == NULL &&
	    (tw->ev = event_new(tw->base, tw->fd, EV_WRITE | EV_PERSIST, tls_writer_ready, tw)) == NULL)
		return -EIO;
	if (event_pending(tw->ev, EV_WRITE, NULL))
		return 0;
	if (event_add(tw->ev, tw->idle.tv_sec || tw->idle.tv_usec ? &tw->idle : NULL) != 0)
		return -EIO;
	return 0;
}

int tls_writer_flush(struct tls_writer *tw, const struct timeval *idle)
{
	if (idle != NULL)
		tw->idle = *idle;
	while (evbuffer_get_length(tw->buf) > 0) {
		struct evbuffer_iovec v[8];
		int nv = evbuffer_peek(tw->buf, TLS_RECORD, NULL, v, 8), r, err;
		size_t n;

		if (nv < 1)
			return -EIO;
		/*
		 * Pieces that fit one record whole (a head, a small body by
		 * reference, or a body stored in small pieces) are made
		 * contiguous first: one SSL_write, one record, one write(2).  A
		 * piece is never split to fill a record, which would shift every
		 * later record across the pieces and copy the whole body; the
		 * head of a large body goes alone.  A large piece goes as it lies
		 * in one SSL_write (partial writes on: it returns after the
		 * records the socket took).  After a blocked SSL_write the same
		 * bytes (or more) come back here, as OpenSSL requires (moving
		 * buffer allowed).
		 */
		n = v[0].iov_len;
		if (n < TLS_RECORD && nv > 1) {
			size_t sum = 0;
			int i;

			for (i = 0; i < nv && i < 8 && sum + v[i].iov_len <= TLS_RECORD; i++)
				sum += v[i].iov_len;
			if (i > 1) {
				if (evbuffer_pullup(tw->buf, (ev_ssize_t)sum) == NULL)
					return -EIO;
				evbuffer_peek(tw->buf, -1, NULL, v, 1);
				n = sum;
			}
		}
		if (n > TLS_WRITE_MAX)
			n = TLS_WRITE_MAX;
		if (n > TLS_RECORD)
			gather_on(tw);
		ERR_clear_error();
		r = SSL_write(tw->ssl, v[0].iov_base, (int)n);
		if (r > 0) {
			evbuffer_drain(tw->buf, (size_t)r);
			continue;
		}
		err = SSL_get_error(tw->ssl, r);
		if (err == SSL_ERROR_WANT_WRITE)
			return tls_writer_wait(tw);
		/*
		 * Anything else ends the connection, SSL_ERROR_WANT_READ too:
		 * after the handshake OpenSSL reads before writing only for a
		 * renegotiation, which the listener refuses
		 * (SSL_OP_NO_RENEGOTIATION); waiting for input libevent may not
		 * read would spin.
		 */
		ERR_clear_error();
		return -EIO;
	}
	switch (gather_flush(tw)) {
	case 0:
		return tls_writer_wait(tw);
	case 1:
		break;
	default:
		return -EIO;
	}
	if (tw->ev != NULL)
		event_del(tw->ev);
	return 0;
}

void tls_writer_free(struct tls_writer *tw)
{
	if (tw == NULL)
		return;
	if (tw->ev != NULL)
		event_free(tw->ev);
	if (tw->buf != NULL)
		evbuffer_free(tw->buf); /* releases queued references (their cleanups run now) */
	free(tw);
}
