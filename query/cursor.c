/* cursor.c - the keyset cursor as base64url text: version 1, start_ts big-endian, call_id. */
#include "cursor.h"

#include <stdint.h>
#include <string.h>

#include "errfmt.h"

#define CURSOR_VERSION 1
#define HEAD_LEN       9 /* version byte + 8 bytes of start_ts */
#define CALL_ID_MAX    (sizeof(((cursor_pos *)0)->call_id) - 1)
#define RAW_MAX        (HEAD_LEN + CALL_ID_MAX)

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of a base64url character, or -1. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int cursor_encode(const cursor_pos *pos, char *out, size_t outlen)
{
    unsigned char raw[RAW_MAX];
    size_t idlen = strnlen(pos->call_id, sizeof(pos->call_id));
    if (idlen > CALL_ID_MAX)
        return -1;
    uint64_t ts = (uint64_t)pos->start_ts;
    raw[0] = CURSOR_VERSION;
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)(ts >> (56 - 8 * i));
    memcpy(raw + HEAD_LEN, pos->call_id, idlen);
    size_t n = HEAD_LEN + idlen;

    if (outlen < (n * 8 + 5) / 6 + 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = ALPHABET[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0)
        out[o++] = ALPHABET[(acc << (6 - bits)) & 0x3f];
    out[o] = '\0';
    return 0;
}

int cursor_decode(const char *text, cursor_pos *pos, char *err, size_t errlen)
{
    unsigned char raw[RAW_MAX];
    size_t len = strlen(text);
    /* A length of 1 mod 4 cannot come from whole bytes. */
    if (len % 4 == 1 || len > (RAW_MAX * 8 + 5) / 6) {
        cdr_errf(err, errlen, "cursor: malformed");
        return -1;
    }
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(text[i]);
        if (v < 0) {
            cdr_errf(err, errlen, "cursor: not base64url");
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* The bits left over must be the zero padding the encoder writes: one text, one cursor. */
    if (acc & ((1u << bits) - 1)) {
        cdr_errf(err, errlen, "cursor: malformed");
        return -1;
    }
    if (n < 1 || raw[0] != CURSOR_VERSION) {
        cdr_errf(err, errlen, "cursor: unknown version");
        return -1;
    }
    if (n < HEAD_LEN + 1) {
        cdr_errf(err, errlen, "cursor: truncated");
        return -1;
    }
    size_t idlen = n - HEAD_LEN;
    if (memchr(raw + HEAD_LEN, '\0', idlen)) {
        cdr_errf(err, errlen, "cursor: malformed call_id");
        return -1;
    }
    uint64_t ts = 0;
    for (int i = 0; i < 8; i++)
        ts = (ts << 8) | raw[1 + i];
    pos->start_ts = (cdr_time)ts;
    memcpy(pos->call_id, raw + HEAD_LEN, idlen);
    pos->call_id[idlen] = '\0';
    return 0;
}
