/* oracle_sql.h - the tests' own statement of what the derived tables must hold, computed from
 * voip_cdr alone (docs/schema.md), written apart from the SQL the writer and cdrctl run so that
 * a mistake in theirs is not repeated here. */
#ifndef CDR_ORACLE_SQL_H
#define CDR_ORACLE_SQL_H

/* voip_callback_state as (tenant_id, number, last_answered_ts, last_missed_ts), from the CDRs
 * of voip_cdr that satisfy 'cond' (an SQL condition; "true" for all): per number, the start of
 * the latest ANSWERED call with it (the caller of an inbound call, the callee of an outbound
 * one) and of the latest inbound call from it that was not answered. */
#define ORACLE_CALLBACK_STATE(cond)                                                                \
    "SELECT tenant_id, number, max(start_ts) FILTER (WHERE answered),"                             \
    " max(start_ts) FILTER (WHERE missed)"                                                         \
    " FROM (SELECT tenant_id, start_ts,"                                                           \
    "        CASE direction WHEN 'in' THEN from_uri ELSE to_uri END AS number,"                    \
    "        disposition = 'ANSWERED' AS answered,"                                                \
    "        direction = 'in' AND disposition <> 'ANSWERED' AS missed"                             \
    "       FROM voip_cdr WHERE " cond ") AS x"                                                    \
    " WHERE answered OR missed GROUP BY tenant_id, number"

/* The columns of voip_callback_state in ORACLE_CALLBACK_STATE's order. */
#define ORACLE_CALLBACK_COLUMNS "tenant_id, number, last_answered_ts, last_missed_ts"

#endif
