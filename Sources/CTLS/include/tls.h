#ifndef OMNIEMBED_TLS_H
#define OMNIEMBED_TLS_H

#include <stddef.h>

/* A TLS server over OpenSSL's libssl, non-blocking: the calls never wait, they say what they need. */

typedef struct oe_tls_context oe_tls_context;
typedef struct oe_tls_session oe_tls_session;

/* A server context: the PEM certificate chain and private key (which must match), and with `client_ca_file` (may be
   NULL) mutual TLS: a client without a certificate signed by it is refused. TLS 1.2 and 1.3 only, ECDHE + AEAD
   ciphers for 1.2, no renegotiation, ALPN http/1.1, session tickets on. NULL on failure, with the reason in `error`. */
oe_tls_context *oe_tls_context_new(const char *certificate_file, const char *private_key_file,
                                   const char *client_ca_file, char *error, size_t error_size);
void oe_tls_context_free(oe_tls_context *context);

/* What a call needs before it can go on. */
enum {
    OE_TLS_DONE = 0,        /* finished (a handshake), or bytes moved (read/write: the count is returned) */
    OE_TLS_WANT_READ = -1,  /* call again when the socket is readable */
    OE_TLS_WANT_WRITE = -2, /* call again when the socket is writable */
    OE_TLS_CLOSED = -3,     /* the peer closed the TLS session */
    OE_TLS_FAILED = -4,     /* a protocol error: close the socket (see oe_tls_last_error) */
};

/* A server session on the accepted, non-blocking socket `fd`. */
oe_tls_session *oe_tls_session_new(oe_tls_context *context, int fd);
void oe_tls_session_free(oe_tls_session *session);
int oe_tls_handshake(oe_tls_session *session);
/* Bytes read (> 0) or one of the OE_TLS_ codes. */
long oe_tls_read(oe_tls_session *session, void *buffer, size_t size);
/* Bytes written (> 0) or one of the OE_TLS_ codes. */
long oe_tls_write(oe_tls_session *session, const void *buffer, size_t size);
/* 1 when the session holds input (decrypted, or read ahead from the socket) that the socket's readiness does not show. */
int oe_tls_pending(const oe_tls_session *session);
/* Sends close_notify (best effort, never waits). */
void oe_tls_shutdown(oe_tls_session *session);
/* The negotiated protocol version ("TLSv1.3"), for metrics. */
const char *oe_tls_version(const oe_tls_session *session);
/* The reason of the last failure on this thread (OpenSSL's error queue, emptied). */
void oe_tls_last_error(char *error, size_t error_size);

#endif
