/* rollup_sql.h - the SQL fragments that compute the rollups and the callback state from CDR
 * rows (docs/schema.md). The writer applies them to the rows a batch inserted, `cdrctl rollups
 * rebuild` to voip_cdr over a range, and the read API's statements sum what they produce: one
 * text, so that a rebuilt bucket always equals the one the writer kept.
 *
 * Each fragment reads the columns of voip_cdr by name from whatever relation the statement
 * selects from (a table, or a CTE with the same column names). */
#ifndef CDR_ROLLUP_SQL_H
#define CDR_ROLLUP_SQL_H

/* The store of a CDR without one, in the store rollup's key. */
#define ROLLUP_NO_STORE "'00000000-0000-0000-0000-000000000000'::uuid"

/* The measure columns of both rollups, in the order of ROLLUP_MEASURES. */
#define ROLLUP_COLUMNS                                                                             \
    "calls, answered, no_answer, busy, failed, billsec_sum, ring_sum_s, mos_sum, mos_n, "          \
    "jitter_sum, jitter_n, loss_sum, loss_n, poor_mos_n"

/* The measures over a group of CDRs. MOS is compared as real, its stored type, so that a MOS
 * of exactly 3.6 is not poor. */
#define ROLLUP_MEASURES                                                                            \
    "count(*), "                                                                                   \
    "count(*) FILTER (WHERE disposition = 'ANSWERED'), "                                           \
    "count(*) FILTER (WHERE disposition = 'NO_ANSWER'), "                                          \
    "count(*) FILTER (WHERE disposition = 'BUSY'), "                                               \
    "count(*) FILTER (WHERE disposition = 'FAILED'), "                                             \
    "coalesce(sum(billsec) FILTER (WHERE disposition = 'ANSWERED'), 0), "                          \
    "coalesce(sum(extract(epoch FROM answer_ts - start_ts)::float8) "                              \
    "         FILTER (WHERE disposition = 'ANSWERED'), 0), "                                       \
    "coalesce(sum(mos::float8), 0), count(mos), "                                                  \
    "coalesce(sum(jitter_ms::float8), 0), count(jitter_ms), "                                      \
    "coalesce(sum(loss_pct::float8), 0), count(loss_pct), "                                        \
    "count(*) FILTER (WHERE mos < 3.6::real)"

/* The key of the hourly store rollup (tenant_id, hour, store_id, direction), in the order of
 * its primary key, so that rows are inserted in the order reads scan them; GROUP BY 1..4. */
#define ROLLUP_STORE_HOUR_KEY                                                                      \
    "tenant_id, date_trunc('hour', start_ts, 'UTC'), coalesce(store_id, " ROLLUP_NO_STORE "), "    \
    "direction"

/* The key of the daily store rollup (tenant_id, day, store_id, direction), in the order of its
 * primary key; GROUP BY 1..4. */
#define ROLLUP_STORE_DAY_KEY                                                                       \
    "tenant_id, (start_ts AT TIME ZONE 'UTC')::date, coalesce(store_id, " ROLLUP_NO_STORE "), "    \
    "direction"

/* The keys of the extension rollups, in the order of their primary keys: (tenant_id, day,
 * ext_number) and (tenant_id, month, ext_number), the month being the first day of the UTC
 * month; GROUP BY 1..3 of CDRs with an extension. Both directions share a row: by-agent needs
 * only the inbound calls not answered, which ROLLUP_EXT_MEASURES adds as a measure. */
#define ROLLUP_EXT_DAY_KEY "tenant_id, (start_ts AT TIME ZONE 'UTC')::date, ext_number"
#define ROLLUP_EXT_MONTH_KEY                                                                       \
    "tenant_id, date_trunc('month', start_ts AT TIME ZONE 'UTC')::date, ext_number"

/* The columns of the extension rollups after the key, in the order of ROLLUP_EXT_MEASURES. */
#define ROLLUP_EXT_COLUMNS ROLLUP_COLUMNS ", in_missed, user_id"

/* ROLLUP_MEASURES, the inbound calls not answered, and the extension's latest non-null user_id
 * in the group (call_id orders calls that started at the same instant, so that every
 * computation picks the same one). */
#define ROLLUP_EXT_MEASURES                                                                        \
    ROLLUP_MEASURES ", "                                                                           \
                    "count(*) FILTER (WHERE direction = 'in' AND disposition <> 'ANSWERED'), "     \
                    "(array_agg(user_id ORDER BY start_ts DESC, call_id DESC)"                     \
                    " FILTER (WHERE user_id IS NOT NULL))[1]"

/* ROLLUP_EXT_MEASURES of a longer period from the rows of its days (columns named as in
 * ROLLUP_EXT_COLUMNS, the day in 'day'): the sums, and the user of the latest day that has one,
 * which is the user of the latest call that has one. */
#define ROLLUP_EXT_SUMS                                                                            \
    "sum(calls), sum(answered), sum(no_answer), sum(busy), sum(failed), sum(billsec_sum), "        \
    "sum(ring_sum_s), sum(mos_sum), sum(mos_n), sum(jitter_sum), sum(jitter_n), sum(loss_sum), "   \
    "sum(loss_n), sum(poor_mos_n), sum(in_missed), "                                               \
    "(array_agg(user_id ORDER BY day DESC) FILTER (WHERE user_id IS NOT NULL))[1]"

/* The callback state of CDRs: per tenant and number, the start of the latest ANSWERED call
 * with it (the caller of an inbound call, the callee of an outbound one) and of the latest
 * missed inbound call from it. Select it FROM the CDRs WHERE ROLLUP_CALLBACK_WHERE, GROUP BY 1,
 * 2 ORDER BY 1, 2, INSERT it INTO voip_callback_state AS c (tenant_id, number,
 * last_answered_ts, last_missed_ts) and end with ROLLUP_CALLBACK_UPSERT: both times only ever
 * move forward (GREATEST ignores NULL), so late arrivals and repeated rebuilds are right. */
#define ROLLUP_CALLBACK_SELECT                                                                     \
    "tenant_id, CASE WHEN direction = 'in' THEN from_uri ELSE to_uri END, "                        \
    "max(start_ts) FILTER (WHERE disposition = 'ANSWERED'), "                                      \
    "max(start_ts) FILTER (WHERE direction = 'in' AND disposition <> 'ANSWERED')"
#define ROLLUP_CALLBACK_WHERE "(disposition = 'ANSWERED' OR direction = 'in')"
#define ROLLUP_CALLBACK_UPSERT                                                                     \
    "ON CONFLICT (tenant_id, number) DO UPDATE"                                                    \
    " SET last_answered_ts = GREATEST(c.last_answered_ts, excluded.last_answered_ts),"             \
    " last_missed_ts = GREATEST(c.last_missed_ts, excluded.last_missed_ts)"                        \
    " WHERE c.last_answered_ts IS DISTINCT FROM"                                                   \
    " GREATEST(c.last_answered_ts, excluded.last_answered_ts)"                                     \
    " OR c.last_missed_ts IS DISTINCT FROM GREATEST(c.last_missed_ts, excluded.last_missed_ts)"

#endif
