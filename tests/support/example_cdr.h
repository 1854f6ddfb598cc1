/* example_cdr.h - the CDR of the example in docs/cdr.md as the 22 fields of its stream row
 * (docs/stream-format.md, CDR_CODEC_CDR_COLUMNS order; "\\N" is NULL), for the suites that
 * start from a valid row. */
#ifndef CDR_EXAMPLE_CDR_H
#define CDR_EXAMPLE_CDR_H

#define EXAMPLE_CDR_TENANT "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define EXAMPLE_CDR_STORE  "11111111-2222-4333-8444-555555555555"
#define EXAMPLE_CDR_DOMAIN "tenanta.edvoip.it"

/* A brace initializer of 22 strings. */
#define EXAMPLE_CDR_FIELDS                                                                         \
    {                                                                                              \
        EXAMPLE_CDR_TENANT, EXAMPLE_CDR_STORE, "Roma Centro", EXAMPLE_CDR_DOMAIN,                  \
            "a1b2c3d4@pbx-1", "in", "+393331234567", "100", "+39061234567", "100", "\\N",          \
            "2025-10-30 09:12:00+00", "2025-10-30 09:12:05+00", "2025-10-30 09:14:13+00", "128",   \
            "ANSWERED", "https://rec.edvoip.it/a1b2c3d4.wav", "4.1", "12.5", "0.2",                \
            "{\"hangup_cause\":\"NORMAL_CLEARING\"}", "2025-10-30 09:14:14.500000+00"              \
    }

#endif
