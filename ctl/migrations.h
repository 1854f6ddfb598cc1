/* migrations.h - the SQL migrations compiled into cdrctl (generated from sql/ at build time). */
#ifndef CDR_MIGRATIONS_H
#define CDR_MIGRATIONS_H

struct migration {
    const char *name; /* file name, "001_schema.sql"; its order is the apply order */
    const char *sql;  /* the whole file */
};

extern const struct migration cdr_migrations[];
extern const int cdr_migration_count;

#endif
