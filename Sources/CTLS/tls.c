#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct oe_tls_context { SSL_CTX *ctx; };
struct oe_tls_session { SSL *ssl; };

void oe_tls_last_error(char *error, size_t error_size) {
    unsigned long code = ERR_get_error();
    if (error_size == 0) { ERR_clear_error(); return; }
    if (code == 0) snprintf(error, error_size, "unknown TLS error");
    else ERR_error_string_n(code, error, error_size);
    ERR_clear_error();
}

/* ALPN: only http/1.1 is spoken; a client that offers ALPN without it gets no protocol (and may go on). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_length, const unsigned char *in,
                       unsigned int in_length, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if (SSL_select_next_proto((unsigned char **)out, out_length, http11, sizeof http11, in, in_length)
        == OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_NOACK;
}

oe_tls_context *oe_tls_context_new(const char *certificate_file, const char *private_key_file,
                                   const char *client_ca_file, char *error, size_t error_size) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) goto failed;
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) goto failed;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")) goto failed;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One read(2) takes whatever the socket has, not a record header and then its body: a syscall less per
       request. Bytes read ahead are the session's, not the socket's, so callers ask oe_tls_pending. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate_file) != 1) goto failed;
    if (SSL_CTX_use_PrivateKey_file(ctx, private_key_file, SSL_FILETYPE_PEM) != 1) goto failed;
    if (SSL_CTX_check_private_key(ctx) != 1) goto failed;
    if (client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca_file, NULL) != 1) goto failed;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    /* Session tickets are on (OpenSSL's default); resuming a session whose client was verified needs a context. */
    static const unsigned char session_context[] = "omniembed";
    if (!SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1)) goto failed;
    oe_tls_context *context = malloc(sizeof *context);
    if (!context) goto failed;
    context->ctx = ctx;
    return context;
failed:
    oe_tls_last_error(error, error_size);
    SSL_CTX_free(ctx);
    return NULL;
}

void oe_tls_context_free(oe_tls_context *context) {
    if (!context) return;
    SSL_CTX_free(context->ctx);
    free(context);
}

oe_tls_session *oe_tls_session_new(oe_tls_context *context, int fd) {
    SSL *ssl = SSL_new(context->ctx);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) { SSL_free(ssl); return NULL; }
    SSL_set_accept_state(ssl);
    oe_tls_session *session = malloc(sizeof *session);
    if (!session) { SSL_free(ssl); return NULL; }
    session->ssl = ssl;
    return session;
}

void oe_tls_session_free(oe_tls_session *session) {
    if (!session) return;
    SSL_free(session->ssl);
    free(session);
}

static int status(SSL *ssl, int result) {
    switch (SSL_get_error(ssl, result)) {
    case SSL_ERROR_WANT_READ: return OE_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return OE_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return OE_TLS_CLOSED;
    default: return OE_TLS_FAILED;
    }
}

int oe_tls_handshake(oe_tls_session *session) {
    ERR_clear_error();
    int result = SSL_do_handshake(session->ssl);
    return result == 1 ? OE_TLS_DONE : status(session->ssl, result);
}

long oe_tls_read(oe_tls_session *session, void *buffer, size_t size) {
    ERR_clear_error();
    size_t count = 0;
    int result = SSL_read_ex(session->ssl, buffer, size, &count);
    return result == 1 ? (long)count : status(session->ssl, result);
}

long oe_tls_write(oe_tls_session *session, const void *buffer, size_t size) {
    ERR_clear_error();
    size_t count = 0;
    int result = SSL_write_ex(session->ssl, buffer, size, &count);
    return result == 1 ? (long)count : status(session->ssl, result);
}

int oe_tls_pending(const oe_tls_session *session) { return SSL_has_pending(session->ssl); }

void oe_tls_shutdown(oe_tls_session *session) {
    ERR_clear_error();
    (void)SSL_shutdown(session->ssl);
    ERR_clear_error();
}

const char *oe_tls_version(const oe_tls_session *session) { return SSL_get_version(session->ssl); }
