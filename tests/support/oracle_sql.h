/* oracle_sql.h - the tests' own statement of what the derived tables must hold, computed from
 * voip_cdr alone (docs/schema.md), written apart from the SQL the writer, cdrctl and the
 * migrations run so that a mistake in theirs is not repeated here. */
#ifndef CDR_ORACLE_SQL_H
#define CDR_ORACLE_SQL_H

/* The count of rows that one of the queries 'a' and 'b' (string literals with the same
 * columns) returns more often than the other: 0 when they return the same rows. */
#define ORACLE_DIFFER(a, b)                                                                        \
    "SELECT (SELECT count(*) FROM ((" a ") EXCEPT ALL (" b ")) AS x)"                              \
    "     + (SELECT count(*) FROM ((" b ") EXCEPT ALL (" a ")) AS y)"

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

/* The UTC hour, day and month (its first day) of a CDR's start_ts: the rollups' time buckets. */
#define ORACLE_UTC_HOUR "date_trunc('hour', start_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
#define ORACLE_UTC_DAY  "(start_ts AT TIME ZONE 'UTC')::date"
#define ORACLE_UTC_MONTH                                                                           \
    "make_date(extract(year FROM start_ts AT TIME ZONE 'UTC')::int,"                               \
    " extract(month FROM start_ts AT TIME ZONE 'UTC')::int, 1)"

/* The measures of a rollup row over a group of CDRs, named as the rollups' columns: calls per
 * disposition, billsec and ring time (answer_ts - start_ts, which only answered calls have) of
 * the answered ones, the QoS sums and counts, and the calls with a MOS below 3.6 (compared as
 * real, its stored type, so that 3.6 itself is not poor). Every float sum here and below is
 * rounded to 6 decimals, so that sums of the same values added in another order compare equal. */
#define ORACLE_MEASURES                                                                            \
    "count(*) AS calls, sum((disposition = 'ANSWERED')::int)::bigint AS answered,"                 \
    " sum((disposition = 'NO_ANSWER')::int)::bigint AS no_answer,"                                 \
    " sum((disposition = 'BUSY')::int)::bigint AS busy,"                                           \
    " sum((disposition = 'FAILED')::int)::bigint AS failed,"                                       \
    " sum(CASE WHEN disposition = 'ANSWERED' THEN billsec ELSE 0 END)::bigint AS billsec_sum,"     \
    " round(sum(CASE WHEN answer_ts IS NULL THEN 0"                                                \
    "  ELSE extract(epoch FROM answer_ts - start_ts)::float8 END)::numeric, 6) AS ring_sum_s,"     \
    " round(coalesce(sum(mos::float8), 0)::numeric, 6) AS mos_sum, count(mos) AS mos_n,"           \
    " round(coalesce(sum(jitter_ms::float8), 0)::numeric, 6) AS jitter_sum,"                       \
    " count(jitter_ms) AS jitter_n,"                                                               \
    " round(coalesce(sum(loss_pct::float8), 0)::numeric, 6) AS loss_sum,"                          \
    " count(loss_pct) AS loss_n,"                                                                  \
    " count(CASE WHEN mos < real '3.6' THEN 1 END) AS poor_mos_n"

/* A rollup table's measure columns as ORACLE_MEASURES gives them. */
#define ORACLE_MEASURE_COLUMNS                                                                     \
    "calls, answered, no_answer, busy, failed, billsec_sum, round(ring_sum_s::numeric, 6),"        \
    " round(mos_sum::numeric, 6), mos_n, round(jitter_sum::numeric, 6), jitter_n,"                 \
    " round(loss_sum::numeric, 6), loss_n, poor_mos_n"

/* A store rollup as (tenant_id, 'bucket', store_id, direction, ORACLE_MEASURES) from the CDRs
 * of voip_cdr that satisfy 'cond', 'bucket' being the column named so, of the value 'expr' of
 * start_ts; the calls of no store are under the all-zero UUID. ORACLE_STORE_ROWS is the table's
 * own rows (voip_cdr_rollup_store_'bucket') in the same columns. */
#define ORACLE_STORE_ROLLUP(bucket, expr, cond)                                                    \
    "SELECT tenant_id, " expr " AS " bucket ","                                                    \
    " coalesce(store_id, '00000000-0000-0000-0000-000000000000'::uuid) AS store_id, direction,"    \
    " " ORACLE_MEASURES " FROM voip_cdr WHERE " cond " GROUP BY 1, 2, 3, 4"
#define ORACLE_STORE_HOUR(cond) ORACLE_STORE_ROLLUP("hour", ORACLE_UTC_HOUR, cond)
#define ORACLE_STORE_DAY(cond)  ORACLE_STORE_ROLLUP("day", ORACLE_UTC_DAY, cond)
#define ORACLE_STORE_ROWS(bucket)                                                                  \
    "SELECT tenant_id, " bucket ", store_id, direction, " ORACLE_MEASURE_COLUMNS                   \
    " FROM voip_cdr_rollup_store_" bucket

/* The store-hour rollup's rows summed per UTC day, in the columns of ORACLE_STORE_ROWS("day"),
 * for the hours that satisfy 'cond' (on the table's columns): what the store-day rollup must
 * hold. */
#define ORACLE_STORE_HOURS_BY_DAY(cond)                                                            \
    "SELECT tenant_id, (hour AT TIME ZONE 'UTC')::date, store_id, direction,"                      \
    " sum(calls), sum(answered), sum(no_answer), sum(busy), sum(failed), sum(billsec_sum),"        \
    " round(sum(ring_sum_s)::numeric, 6), round(sum(mos_sum)::numeric, 6), sum(mos_n),"            \
    " round(sum(jitter_sum)::numeric, 6), sum(jitter_n), round(sum(loss_sum)::numeric, 6),"        \
    " sum(loss_n), sum(poor_mos_n)"                                                                \
    " FROM voip_cdr_rollup_store_hour WHERE " cond " GROUP BY 1, 2, 3, 4"

/* The columns of an extension rollup after its key. */
#define ORACLE_EXT_COLUMNS ORACLE_MEASURE_COLUMNS ", in_missed, user_id"

/* An extension rollup as (tenant_id, 'bucket', ext_number, ORACLE_EXT_COLUMNS) from the CDRs of
 * voip_cdr with an extension, both directions together, 'bucket' being the column named so, of
 * the value 'expr' of start_ts: ORACLE_MEASURES, the inbound calls not ANSWERED, and the user of
 * the bucket's latest call that has one (the greatest call_id among those that started at the
 * same instant), NULL when none has. 'cond' (on the CDRs' columns and 'bucket') must keep or
 * drop whole buckets. ORACLE_EXT_ROWS is the table's own rows (voip_cdr_rollup_ext_'bucket') in
 * the same columns. */
#define ORACLE_EXT_ROLLUP(bucket, expr, cond)                                                      \
    "SELECT tenant_id, " bucket ", ext_number, " ORACLE_MEASURES ","                               \
    " count(CASE WHEN direction = 'in' AND disposition <> 'ANSWERED' THEN 1 END) AS in_missed,"    \
    " latest_user AS user_id"                                                                      \
    " FROM (SELECT c.*, " expr " AS " bucket ","                                                   \
    "        first_value(user_id) OVER (PARTITION BY tenant_id, ext_number, " expr                 \
    "          ORDER BY user_id IS NULL, start_ts DESC, call_id DESC) AS latest_user"              \
    "       FROM voip_cdr c WHERE ext_number IS NOT NULL) AS x"                                    \
    " WHERE " cond " GROUP BY tenant_id, " bucket ", ext_number, latest_user"
#define ORACLE_EXT_DAY(cond)   ORACLE_EXT_ROLLUP("day", ORACLE_UTC_DAY, cond)
#define ORACLE_EXT_MONTH(cond) ORACLE_EXT_ROLLUP("month", ORACLE_UTC_MONTH, cond)
#define ORACLE_EXT_ROWS(bucket)                                                                    \
    "SELECT tenant_id, " bucket ", ext_number, " ORACLE_EXT_COLUMNS                                \
    " FROM voip_cdr_rollup_ext_" bucket

#endif
