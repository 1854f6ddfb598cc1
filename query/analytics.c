/* analytics.c - the KPI endpoints. Each statement reads the rollups for the whole buckets inside
 * the range (UTC days of the daily store rollup, the UTC hours around them of the hourly one;
 * UTC months and days of the extension rollups for by-agent) and voip_cdr only for the partial
 * buckets at its edges, so that a month costs days, not calls.
 *
 * Every statement takes the same parameters:
 *   $1 tenant (uuid text; NULL: the transaction's app.tenant_id, which the pool sets to the
 *      token's tenant), $2 from, $3 from_is_date, $4 to, $5 to_is_date, $6 tz, $7 store_id
 *      (NULL: every store).
 * A date-only from is that day's midnight in tz, a date-only to the midnight after that day in
 * tz; a datetime is an instant. Every table is read with tenant_id equal to the tenant.
 * The missed-calls list (a page of rows, found through the partial index of missed inbound
 * calls) reads voip_cdr only; its further parameters, and QoS's, are described with them. */
#include "analytics.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errfmt.h"
#include "pg_json.h"
#include "rollup_sql.h"
#include "timefmt.h"

/* The range, the tenant and the store filter (one row). lo..hi is the range [from, to);
 * h0 = the first UTC hour boundary at or after lo, h1 = the last one at or before hi: the hours
 * [h0, h1) are whole (none when h0 >= h1) and the rest, [lo, min(h0, hi)) and
 * [max(h0, h1), hi), comes from the raw rows. Within the whole hours, the whole UTC days
 * [s0, s1) come from the daily store rollup and the hours [h0, min(s0, h1)) and
 * [max(s1, h0), h1) from the hourly one; without a whole day s0 = s1 = h1, so that every whole
 * hour is read hourly. d0 and d1 bound the whole UTC days of the extension rollup in the same
 * way, except that with a store filter that rollup (which does not keep the store of each
 * call) is not used: d0 = d1 = hi then and every row comes from voip_cdr. Within [d0, d1) the
 * whole UTC months [m0, m1) come from the monthly extension rollup and the days [d0, min(m0,
 * d1)) and [max(m1, d0), d1) from the daily one; without a whole month m0 = m1 = d1. */
#define SQL_TID "coalesce($1::uuid, NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
#define SQL_RANGE_LO                                                                               \
    "CASE WHEN $3::bool THEN ($2::text::date)::timestamp AT TIME ZONE $6::text"                    \
    " ELSE $2::text::timestamptz END"
#define SQL_RANGE_HI                                                                               \
    "CASE WHEN $5::bool THEN (($4::text::date) + 1)::timestamp AT TIME ZONE $6::text"              \
    " ELSE $4::text::timestamptz END"
#define RANGE_CTE                                                                                  \
    "WITH r AS ("                                                                                  \
    " SELECT " SQL_TID " AS tid, " SQL_RANGE_LO " AS lo, " SQL_RANGE_HI " AS hi,"                  \
    "  $7::uuid AS store"                                                                          \
    "), b0 AS ("                                                                                   \
    " SELECT tid, lo, hi, store,"                                                                  \
    "  CASE WHEN date_trunc('hour', lo, 'UTC') = lo THEN lo"                                       \
    "   ELSE date_trunc('hour', lo, 'UTC') + interval '1 hour' END AS h0,"                         \
    "  date_trunc('hour', hi, 'UTC') AS h1,"                                                       \
    "  CASE WHEN date_trunc('day', lo, 'UTC') = lo THEN lo"                                        \
    "   ELSE date_trunc('day', lo, 'UTC') + interval '24 hours' END AS u0,"                        \
    "  date_trunc('day', hi, 'UTC') AS u1"                                                         \
    " FROM r"                                                                                      \
    "), bd AS ("                                                                                   \
    " SELECT tid, lo, hi, store, h0, h1,"                                                          \
    "  CASE WHEN u0 < u1 THEN u0 ELSE h1 END AS s0,"                                               \
    "  CASE WHEN u0 < u1 THEN u1 ELSE h1 END AS s1,"                                               \
    "  CASE WHEN store IS NOT NULL THEN hi ELSE u0 END AS d0,"                                     \
    "  CASE WHEN store IS NOT NULL THEN hi ELSE u1 END AS d1"                                      \
    " FROM b0"                                                                                     \
    "), bm AS ("                                                                                   \
    " SELECT tid, lo, hi, store, h0, h1, s0, s1, d0, d1,"                                          \
    "  CASE WHEN n0 < n1 THEN n0 ELSE d1 END AS m0, CASE WHEN n0 < n1 THEN n1 ELSE d1 END AS m1"   \
    " FROM (SELECT bd.*,"                                                                          \
    "   CASE WHEN date_trunc('month', d0 AT TIME ZONE 'UTC') = d0 AT TIME ZONE 'UTC' THEN d0"      \
    "    ELSE (date_trunc('month', d0 AT TIME ZONE 'UTC') + interval '1 month')"                   \
    "     AT TIME ZONE 'UTC' END AS n0,"                                                           \
    "   date_trunc('month', d1 AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS n1"                       \
    "  FROM bd) bn"                                                                                \
    "), b AS ("                                                                                    \
    " SELECT bm.*, (s0 AT TIME ZONE 'UTC')::date AS s0d, (s1 AT TIME ZONE 'UTC')::date AS s1d,"    \
    "  (m0 AT TIME ZONE 'UTC')::date AS m0d, (m1 AT TIME ZONE 'UTC')::date AS m1d,"                \
    "  (d0 AT TIME ZONE 'UTC')::date AS e0d, (least(m0, d1) AT TIME ZONE 'UTC')::date AS e1d,"     \
    "  (greatest(m1, d0) AT TIME ZONE 'UTC')::date AS e2d, (d1 AT TIME ZONE 'UTC')::date AS e3d"   \
    " FROM bm)"

/* One row per rollup row and per raw CDR at the edges: direction, store (all-zero = none),
 * calls, answered, billsec of answered, ring seconds of answered. */
#define RAW_MEASURES                                                                               \
    "c.direction, coalesce(c.store_id, " ROLLUP_NO_STORE "), 1::bigint,"                           \
    " (c.disposition = 'ANSWERED')::int::bigint,"                                                  \
    " CASE WHEN c.disposition = 'ANSWERED' THEN c.billsec ELSE 0 END::bigint,"                     \
    " CASE WHEN c.disposition = 'ANSWERED'"                                                        \
    "  THEN extract(epoch FROM c.answer_ts - c.start_ts)::float8 ELSE 0 END"
#define ROLLUP_MEASURE_COLS                                                                        \
    "s.direction, s.store_id, s.calls, s.answered, s.billsec_sum, s.ring_sum_s"
#define STORE_CTE                                                                                  \
    ", m (direction, store, calls, answered, billsec, ring) AS ("                                  \
    " SELECT " ROLLUP_MEASURE_COLS                                                                 \
    "  FROM b JOIN public.voip_cdr_rollup_store_day s ON s.tenant_id = b.tid"                      \
    "    AND s.day >= b.s0d AND s.day < b.s1d"                                                     \
    "  WHERE s.tenant_id = b.tid AND (b.store IS NULL OR s.store_id = b.store)"                    \
    " UNION ALL"                                                                                   \
    " SELECT " ROLLUP_MEASURE_COLS "  FROM b JOIN public.voip_cdr_rollup_store_hour s"             \
    "    ON s.tenant_id = b.tid AND s.hour >= b.h0 AND s.hour < least(b.s0, b.h1)"                 \
    "  WHERE s.tenant_id = b.tid AND (b.store IS NULL OR s.store_id = b.store)"                    \
    " UNION ALL"                                                                                   \
    " SELECT " ROLLUP_MEASURE_COLS "  FROM b JOIN public.voip_cdr_rollup_store_hour s"             \
    "    ON s.tenant_id = b.tid AND s.hour >= greatest(b.s1, b.h0) AND s.hour < b.h1"              \
    "  WHERE s.tenant_id = b.tid AND (b.store IS NULL OR s.store_id = b.store)"                    \
    " UNION ALL"                                                                                   \
    " SELECT " RAW_MEASURES " FROM b JOIN public.voip_cdr c"                                       \
    "    ON c.tenant_id = b.tid AND c.start_ts >= b.lo AND c.start_ts < least(b.h0, b.hi)"         \
    "  WHERE c.tenant_id = b.tid AND (b.store IS NULL OR c.store_id = b.store)"                    \
    " UNION ALL"                                                                                   \
    " SELECT " RAW_MEASURES " FROM b JOIN public.voip_cdr c"                                       \
    "    ON c.tenant_id = b.tid AND c.start_ts >= greatest(b.h0, b.h1) AND c.start_ts < b.hi"      \
    "  WHERE c.tenant_id = b.tid AND (b.store IS NULL OR c.store_id = b.store)"                    \
    ")"

/* callbacks_due: the numbers whose latest missed inbound call in the range is still due (no
 * ANSWERED call with that number started after it). Without a store filter it is read from
 * voip_callback_state, which keeps each number's latest missed call (M) and latest answered
 * call (A), both kept by the writer in the transaction of the rows (so in step with voip_cdr):
 *   - M in the range: that call is the latest of the range; due when A is NULL or A <= M;
 *   - M after the range: due when some missed call of the number lies in [max(lo, A), hi),
 *     which needs A < hi; those few numbers are looked up in voip_cdr;
 *   - M before the range or none: no missed call in it.
 * One pass over the tenant's numbers decides all three.
 * With a store filter the latest missed call of that store's calls decides: they are read
 * from voip_cdr. */
#define DUE_CTE                                                                                    \
    ", last_missed AS ("                                                                           \
    " SELECT DISTINCT ON (c.from_uri) c.from_uri, c.start_ts"                                      \
    "  FROM b JOIN public.voip_cdr c"                                                              \
    "    ON c.tenant_id = b.tid AND c.start_ts >= b.lo AND c.start_ts < b.hi"                      \
    "  WHERE b.store IS NOT NULL AND c.tenant_id = b.tid AND c.direction = 'in'"                   \
    "    AND c.disposition <> 'ANSWERED' AND c.store_id = b.store"                                 \
    "  ORDER BY c.from_uri, c.start_ts DESC"                                                       \
    "), due AS ("                                                                                  \
    " SELECT (SELECT count(*) FROM last_missed l CROSS JOIN b"                                     \
    "   LEFT JOIN public.voip_callback_state k ON k.tenant_id = b.tid AND k.number = l.from_uri"   \
    "   WHERE k.last_answered_ts IS NULL OR k.last_answered_ts <= l.start_ts)"                     \
    "  + (SELECT count(*) FROM b JOIN public.voip_callback_state k ON k.tenant_id = b.tid"         \
    "   WHERE b.store IS NULL AND k.last_missed_ts >= b.lo"                                        \
    "    AND CASE WHEN k.last_missed_ts < b.hi"                                                    \
    "     THEN k.last_answered_ts IS NULL OR k.last_answered_ts <= k.last_missed_ts"               \
    "     ELSE (k.last_answered_ts IS NULL OR k.last_answered_ts < b.hi)"                          \
    "      AND EXISTS (SELECT 1 FROM public.voip_cdr c WHERE c.tenant_id = b.tid"                  \
    "       AND c.direction = 'in' AND c.disposition <> 'ANSWERED' AND c.from_uri = k.number"      \
    "       AND c.start_ts >= greatest(b.lo, k.last_answered_ts) AND c.start_ts < b.hi) END)"      \
    "  AS n"                                                                                       \
    ")"

/* Columns: total, inbound calls, inbound answered, outbound calls, outbound answered, answered,
 * billsec of answered, ring seconds of answered, callbacks due (DUE_CTE). */
static const char summary_sql[] = RANGE_CTE STORE_CTE DUE_CTE
    " SELECT coalesce(sum(calls), 0)::bigint,"
    "  coalesce(sum(calls) FILTER (WHERE direction = 'in'), 0)::bigint,"
    "  coalesce(sum(answered) FILTER (WHERE direction = 'in'), 0)::bigint,"
    "  coalesce(sum(calls) FILTER (WHERE direction = 'out'), 0)::bigint,"
    "  coalesce(sum(answered) FILTER (WHERE direction = 'out'), 0)::bigint,"
    "  coalesce(sum(answered), 0)::bigint, coalesce(sum(billsec), 0)::bigint,"
    "  coalesce(sum(ring), 0)::float8, (SELECT n FROM due)::bigint"
    " FROM m";

/* Columns: store_id (NULL for calls without a store), store name (NULL when unknown), total,
 * answered, missed, billsec of answered, outbound calls, outbound answered. */
static const char by_store_sql[] = RANGE_CTE STORE_CTE
    ", g AS ("
    " SELECT store, sum(calls)::bigint AS total, sum(answered)::bigint AS answered,"
    "  coalesce(sum(calls - answered) FILTER (WHERE direction = 'in'), 0)::bigint AS missed,"
    "  sum(billsec)::bigint AS billsec,"
    "  coalesce(sum(calls) FILTER (WHERE direction = 'out'), 0)::bigint AS out_calls,"
    "  coalesce(sum(answered) FILTER (WHERE direction = 'out'), 0)::bigint AS out_answered"
    "  FROM m GROUP BY store"
    ")"
    " SELECT NULLIF(g.store, " ROLLUP_NO_STORE ")::text, st.name, g.total, g.answered, g.missed,"
    "  g.billsec, g.out_calls, g.out_answered"
    " FROM g CROSS JOIN b"
    " LEFT JOIN public.voip_stores st ON st.tenant_id = b.tid AND st.store_id = g.store"
    " ORDER BY g.total DESC, g.store";

/* The extension rollups and the raw edges, one row per rollup row (e) or CDR (c) with the
 * columns 'month', 'day' and 'raw' give: whole UTC months from the monthly rollup, the whole
 * days around them from the daily one, the rest from voip_cdr. */
#define AGENT_SOURCES(month, day, raw)                                                             \
    " SELECT " month " FROM b JOIN public.voip_cdr_rollup_ext_month e ON e.tenant_id = b.tid"      \
    "    AND e.month >= b.m0d"                                                                     \
    "    AND e.month < b.m1d"                                                                      \
    "  WHERE e.tenant_id = b.tid"                                                                  \
    " UNION ALL"                                                                                   \
    " SELECT " day " FROM b JOIN public.voip_cdr_rollup_ext_day e ON e.tenant_id = b.tid"          \
    "    AND e.day >= b.e0d"                                                                       \
    "    AND e.day < b.e1d"                                                                        \
    "  WHERE e.tenant_id = b.tid"                                                                  \
    " UNION ALL"                                                                                   \
    " SELECT " day " FROM b JOIN public.voip_cdr_rollup_ext_day e ON e.tenant_id = b.tid"          \
    "    AND e.day >= b.e2d"                                                                       \
    "    AND e.day < b.e3d"                                                                        \
    "  WHERE e.tenant_id = b.tid"                                                                  \
    " UNION ALL"                                                                                   \
    " SELECT " raw " FROM b JOIN public.voip_cdr c"                                                \
    "    ON c.tenant_id = b.tid AND c.start_ts >= b.lo AND c.start_ts < least(b.d0, b.hi)"         \
    "  WHERE c.tenant_id = b.tid AND c.ext_number IS NOT NULL"                                     \
    "    AND (b.store IS NULL OR c.store_id = b.store)"                                            \
    " UNION ALL"                                                                                   \
    " SELECT " raw " FROM b JOIN public.voip_cdr c"                                                \
    "    ON c.tenant_id = b.tid AND c.start_ts >= greatest(b.d0, b.d1) AND c.start_ts < b.hi"      \
    "  WHERE c.tenant_id = b.tid AND c.ext_number IS NOT NULL"                                     \
    "    AND (b.store IS NULL OR c.store_id = b.store)"

/* Per extension. 'ts' orders the sources in time (a rollup row by the start of its month or
 * day, which the raw rows at the range's start precede and those at its end follow) so that
 * the latest user_id seen wins. Columns: ext_number, user_id, total, answered, missed, billsec
 * of answered, MOS sum, MOS count. */
#define AGENT_ROLLUP(start)                                                                        \
    "e.ext_number, e.calls, e.answered, e.in_missed, e.billsec_sum, e.mos_sum, e.mos_n,"           \
    " e.user_id, " start "::timestamp AT TIME ZONE 'UTC'"
#define AGENT_RAW                                                                                  \
    "c.ext_number, 1::bigint, (c.disposition = 'ANSWERED')::int::bigint,"                          \
    " (c.direction = 'in' AND c.disposition <> 'ANSWERED')::int::bigint,"                          \
    " CASE WHEN c.disposition = 'ANSWERED' THEN c.billsec ELSE 0 END::bigint,"                     \
    " coalesce(c.mos::float8, 0), (c.mos IS NOT NULL)::int::bigint, c.user_id, c.start_ts"
static const char by_agent_sql[] = RANGE_CTE
    ", m (ext, calls, answered, missed, billsec, mos_sum, mos_n, user_id, ts) AS (" AGENT_SOURCES(
        AGENT_ROLLUP("e.month"), AGENT_ROLLUP("e.day"),
        AGENT_RAW) ")"
                   " SELECT ext,"
                   "  ((array_agg(user_id ORDER BY ts DESC) FILTER (WHERE user_id IS NOT "
                   "NULL))[1])::text,"
                   "  sum(calls)::bigint AS total, sum(answered)::bigint, sum(missed)::bigint,"
                   "  sum(billsec)::bigint, sum(mos_sum)::float8, sum(mos_n)::bigint"
                   " FROM m GROUP BY ext ORDER BY total DESC, ext";

/* The missed inbound calls of the range: the WHERE repeats the predicates of the partial index
 * on (tenant_id, start_ts DESC) of inbound calls not answered, and names the range by its
 * expressions rather than through b, so that the planner sees how many calls it holds and which
 * partitions. NOT MATERIALIZED: the total counts through that index and the page reads its
 * fifty rows newest first from it, instead of both reading one copy of every missed call of
 * the range. Further parameters: $8 did_e164 (NULL: every number dialled), $9 rows of a page,
 * $10 rows before it. */
#define MISSED_CTE                                                                                 \
    ", mc AS NOT MATERIALIZED ("                                                                   \
    " SELECT c.call_id, c.from_uri, c.did_e164, c.store_id, c.ext_number, c.start_ts,"             \
    "  c.disposition"                                                                              \
    "  FROM public.voip_cdr c"                                                                     \
    "  WHERE c.tenant_id = " SQL_TID " AND c.start_ts >= " SQL_RANGE_LO                            \
    "    AND c.start_ts < " SQL_RANGE_HI                                                           \
    "    AND c.direction = 'in' AND c.disposition <> 'ANSWERED'"                                   \
    "    AND ($7::uuid IS NULL OR c.store_id = $7::uuid)"                                          \
    "    AND ($8::text IS NULL OR c.did_e164 = $8::text)"                                          \
    ")"

/* A call of the page is due while the latest ANSWERED call with its number (voip_callback_state)
 * is missing or did not start after it. Columns: total, call_id, from_uri, did_e164, store_id,
 * ext_number, start_ts (epoch microseconds), disposition, callback_due. An empty page is one row
 * with the total and NULL call_id. Newest first. */
static const char missed_sql[] = RANGE_CTE MISSED_CTE
    ", t AS (SELECT count(*)::bigint AS total FROM mc"
    "), p AS ("
    " SELECT pm.*, (k.last_answered_ts IS NULL OR k.last_answered_ts <= pm.start_ts) AS due"
    "  FROM (SELECT * FROM mc ORDER BY start_ts DESC, call_id DESC"
    "        LIMIT $9::int8 OFFSET $10::int8) pm"
    "  CROSS JOIN b"
    "  LEFT JOIN public.voip_callback_state k ON k.tenant_id = b.tid AND k.number = pm.from_uri"
    ")"
    " SELECT t.total, p.call_id, p.from_uri, p.did_e164, p.store_id::text, p.ext_number,"
    "  (extract(epoch FROM p.start_ts) * 1000000)::int8, p.disposition, p.due"
    " FROM t LEFT JOIN p ON true ORDER BY p.start_ts DESC, p.call_id DESC";

/* One row per calling number: its missed calls in the range, the latest one's call_id, did_e164
 * and store_id, and whether that latest call is due. Columns: total (numbers), from_uri,
 * attempts, first_ts, last_ts (epoch microseconds), last_call_id, did_e164, store_id,
 * callback_due. An empty page is one row with the total and NULL from_uri. Latest first. */
static const char missed_unique_sql[] = RANGE_CTE MISSED_CTE
    ", u AS ("
    " SELECT from_uri, count(*)::bigint AS attempts, min(start_ts) AS first_ts,"
    "  max(start_ts) AS last_ts,"
    "  (array_agg(call_id ORDER BY start_ts DESC, call_id DESC))[1] AS last_call_id,"
    "  (array_agg(did_e164 ORDER BY start_ts DESC, call_id DESC))[1] AS did_e164,"
    "  (array_agg(store_id ORDER BY start_ts DESC, call_id DESC))[1] AS store_id"
    "  FROM mc GROUP BY from_uri"
    "), t AS (SELECT count(*)::bigint AS total FROM u"
    "), p AS ("
    " SELECT pu.*, (k.last_answered_ts IS NULL OR k.last_answered_ts <= pu.last_ts) AS due"
    "  FROM (SELECT * FROM u ORDER BY last_ts DESC, from_uri DESC"
    "        LIMIT $9::int8 OFFSET $10::int8) pu"
    "  CROSS JOIN b"
    "  LEFT JOIN public.voip_callback_state k ON k.tenant_id = b.tid AND k.number = pu.from_uri"
    ")"
    " SELECT t.total, p.from_uri, p.attempts, (extract(epoch FROM p.first_ts) * 1000000)::int8,"
    "  (extract(epoch FROM p.last_ts) * 1000000)::int8, p.last_call_id, p.did_e164,"
    "  p.store_id::text, p.due"
    " FROM t LEFT JOIN p ON true ORDER BY p.last_ts DESC, p.from_uri DESC";

/* QoS, from the same sources as the KPIs: for each group calls counts every CDR, each average
 * is over the calls carrying that value, poor_calls counts the calls with MOS under 3.6. The
 * sources give one row per rollup row or raw CDR: the group's key, calls, then sum and count
 * of MOS, jitter and loss, and the poor count. Columns of the answer: the group's key, calls,
 * avg_mos, avg_jitter_ms, avg_loss_pct, poor_calls. */
#define QOS_ROLLUP_COLS                                                                            \
    " s.calls, s.mos_sum, s.mos_n, s.jitter_sum, s.jitter_n, s.loss_sum, s.loss_n, s.poor_mos_n"
#define QOS_AGENT_COLS                                                                             \
    " e.calls, e.mos_sum, e.mos_n, e.jitter_sum, e.jitter_n, e.loss_sum, e.loss_n, e.poor_mos_n"
#define QOS_RAW_COLS                                                                               \
    " 1::bigint, coalesce(c.mos::float8, 0), (c.mos IS NOT NULL)::int::bigint,"                    \
    " coalesce(c.jitter_ms::float8, 0), (c.jitter_ms IS NOT NULL)::int::bigint,"                   \
    " coalesce(c.loss_pct::float8, 0), (c.loss_pct IS NOT NULL)::int::bigint,"                     \
    " (c.mos < 3.6::real)::int::bigint"
#define QOS_SELECT                                                                                 \
    " SELECT k, sum(calls)::bigint AS calls, (sum(mos_sum) / NULLIF(sum(mos_n), 0))::float8,"      \
    "  (sum(jitter_sum) / NULLIF(sum(jitter_n), 0))::float8,"                                      \
    "  (sum(loss_sum) / NULLIF(sum(loss_n), 0))::float8, sum(poor)::bigint"                        \
    " FROM q GROUP BY k"
#define QOS_Q "q (k, calls, mos_sum, mos_n, jitter_sum, jitter_n, loss_sum, loss_n, poor)"

/* The store rollups and the raw edges, with the group's key given for a daily rollup row (s),
 * an hourly one (s) and a CDR (c). qb bounds them: whole days [q0, q1) from the daily rollup,
 * whole hours [g0, min(q0, g1)) and [max(q1, g0), g1) from the hourly one, the rest raw. Each
 * rollup is compared with bounds of its own type, computed beforehand: a join condition that
 * applies a function to the other side's column cannot be pushed under row-level security
 * into the index scan (the function is not leakproof), which then reads the tenant's every
 * row. */
#define QOS_STORE_SOURCES(kday, khour, kraw)                                                       \
    ", qd AS (SELECT qb.*, (q0 AT TIME ZONE 'UTC')::date AS q0d,"                                  \
    "  (q1 AT TIME ZONE 'UTC')::date AS q1d FROM qb)"                                              \
    ", " QOS_Q " AS ("                                                                             \
    " SELECT " kday "," QOS_ROLLUP_COLS                                                            \
    "  FROM qd JOIN public.voip_cdr_rollup_store_day s ON s.tenant_id = qd.tid"                    \
    "    AND s.day >= qd.q0d AND s.day < qd.q1d"                                                   \
    "  WHERE s.tenant_id = qd.tid AND (qd.store IS NULL OR s.store_id = qd.store)"                 \
    " UNION ALL"                                                                                   \
    " SELECT " khour "," QOS_ROLLUP_COLS "  FROM qb JOIN public.voip_cdr_rollup_store_hour s"      \
    "    ON s.tenant_id = qb.tid AND s.hour >= qb.g0 AND s.hour < least(qb.q0, qb.g1)"             \
    "  WHERE s.tenant_id = qb.tid AND (qb.store IS NULL OR s.store_id = qb.store)"                 \
    " UNION ALL"                                                                                   \
    " SELECT " khour "," QOS_ROLLUP_COLS "  FROM qb JOIN public.voip_cdr_rollup_store_hour s"      \
    "    ON s.tenant_id = qb.tid AND s.hour >= greatest(qb.q1, qb.g0) AND s.hour < qb.g1"          \
    "  WHERE s.tenant_id = qb.tid AND (qb.store IS NULL OR s.store_id = qb.store)"                 \
    " UNION ALL"                                                                                   \
    " SELECT " kraw "," QOS_RAW_COLS " FROM qb JOIN public.voip_cdr c"                             \
    "    ON c.tenant_id = qb.tid AND c.start_ts >= qb.lo AND c.start_ts < least(qb.g0, qb.hi)"     \
    "  WHERE c.tenant_id = qb.tid AND (qb.store IS NULL OR c.store_id = qb.store)"                 \
    " UNION ALL"                                                                                   \
    " SELECT " kraw "," QOS_RAW_COLS " FROM qb JOIN public.voip_cdr c"                             \
    "    ON c.tenant_id = qb.tid AND c.start_ts >= greatest(qb.g0, qb.g1) AND c.start_ts < qb.hi"  \
    "  WHERE c.tenant_id = qb.tid AND (qb.store IS NULL OR c.store_id = qb.store)"                 \
    ")"

/* group_by=period; $8 the bucket: 'hour' (UTC hours, "YYYY-MM-DDThh:00:00Z") or 'day' (days
 * of tz, "YYYY-MM-DD"). Hours never come from the daily rollup; days do only in UTC. Days of
 * another zone add up the hourly rollup by local day when the zone's offset is whole hours at
 * both ends of the range (every UTC hour then lies in one local day); otherwise (India's
 * +05:30, say) everything is read raw. Oldest first. */
#define QOS_HOUR_KEY(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\":00:00Z\"')"
#define QOS_DAY_KEY(col)  "to_char(" col " AT TIME ZONE $6::text, 'YYYY-MM-DD')"
static const char qos_period_sql[] = RANGE_CTE
    ", qb AS ("
    " SELECT tid, lo, hi, store,"
    "  CASE WHEN w THEN h0 ELSE hi END AS g0, CASE WHEN w THEN h1 ELSE hi END AS g1,"
    "  CASE WHEN $8::text = 'day' AND $6::text = 'UTC' THEN s0"
    "   WHEN w THEN h1 ELSE hi END AS q0,"
    "  CASE WHEN $8::text = 'day' AND $6::text = 'UTC' THEN s1"
    "   WHEN w THEN h1 ELSE hi END AS q1"
    " FROM (SELECT b.*, ($8::text = 'hour' OR $6::text = 'UTC'"
    "   OR (extract(minute FROM h0 AT TIME ZONE $6::text) = 0"
    "    AND extract(minute FROM h1 AT TIME ZONE $6::text) = 0)) AS w FROM b) bw"
    ")" QOS_STORE_SOURCES(
        "to_char(s.day, 'YYYY-MM-DD')",
        "CASE WHEN $8::text = 'hour' THEN " QOS_HOUR_KEY("s.hour") " ELSE " QOS_DAY_KEY(
            "s.hour") " END",
        "CASE WHEN $8::text = 'hour' THEN " QOS_HOUR_KEY(
            "date_trunc('hour', c.start_ts, 'UTC')") " ELSE " QOS_DAY_KEY("c.start_ts") " "
                                                                                        "END")
        QOS_SELECT " ORDER BY k";

/* group_by=store: store_id NULL for the calls without a store. Most calls first. */
#define QOS_STORE_KEY(col) "NULLIF(" col ", " ROLLUP_NO_STORE ")::text"
static const char qos_store_sql[] =
    RANGE_CTE ", qb AS (SELECT tid, lo, hi, store, h0 AS g0, h1 AS g1, s0 AS q0, s1 AS q1 FROM "
              "b)" QOS_STORE_SOURCES(QOS_STORE_KEY("s.store_id"), QOS_STORE_KEY("s.store_id"),
                                     QOS_STORE_KEY("coalesce(c.store_id, " ROLLUP_NO_STORE ")"))
                  QOS_SELECT " ORDER BY calls DESC, k";

/* group_by=agent: the calls with an extension, from the extension rollups (not with a store
 * filter: they do not keep the store of each call) and the raw edges. Most calls first. */
static const char qos_agent_sql[] = RANGE_CTE
    ", " QOS_Q " AS (" AGENT_SOURCES("e.ext_number," QOS_AGENT_COLS, "e.ext_number," QOS_AGENT_COLS,
                                     "c.ext_number," QOS_RAW_COLS) ")" QOS_SELECT
                                                                   " ORDER BY calls DESC, k";

#define N_PARAMS 7

static void set_value(sql_stmt *out, int i, const char *v)
{
    if (!v) {
        out->values[i][0] = '\0';
        out->pv[i] = NULL;
        return;
    }
    snprintf(out->values[i], sizeof(out->values[i]), "%s", v);
    out->pv[i] = out->values[i];
}

int analytics_stmt(analytics_kind kind, const query_params *p, sql_stmt *out, char *err,
                   size_t errlen)
{
    switch (kind) {
    case ANALYTICS_SUMMARY:
        out->sql = summary_sql;
        break;
    case ANALYTICS_BY_STORE:
        out->sql = by_store_sql;
        break;
    case ANALYTICS_BY_AGENT:
        out->sql = by_agent_sql;
        break;
    case ANALYTICS_MISSED:
        /* Planned for its values: the range is named by its expressions (MISSED_CTE). */
        out->sql = p->only_unique ? missed_unique_sql : missed_sql;
        break;
    case ANALYTICS_QOS:
        if (p->group_by && strcmp(p->group_by, "store") == 0)
            out->sql = qos_store_sql;
        else if (p->group_by && strcmp(p->group_by, "agent") == 0)
            out->sql = qos_agent_sql;
        else
            out->sql = qos_period_sql;
        break;
    default:
        cdr_errf(err, errlen, "this analytics endpoint is not available");
        return -1;
    }
    if (!p->has_from) {
        cdr_errf(err, errlen, "from: required");
        return -1;
    }
    if (!p->has_to) {
        cdr_errf(err, errlen, "to: required");
        return -1;
    }
    /* The KPI statements see their values only through the range CTE: one plan serves all. */
    out->prepare = kind != ANALYTICS_MISSED;
    out->n = N_PARAMS;
    set_value(out, 0, NULL); /* the tenant: the caller may set it, see the top of this file */
    set_value(out, 1, p->from);
    set_value(out, 2, p->from_is_date ? "t" : "f");
    set_value(out, 3, p->to);
    set_value(out, 4, p->to_is_date ? "t" : "f");
    set_value(out, 5, p->tz[0] ? p->tz : "UTC");
    set_value(out, 6, p->store_id[0] ? p->store_id : NULL);
    if (kind == ANALYTICS_MISSED) {
        long page = p->page > 0 ? p->page : 1;
        long size = p->page_size > 0 ? p->page_size : PARAMS_DEFAULT_PAGE_SIZE;
        char n[32];
        set_value(out, 7, p->did_e164[0] ? p->did_e164 : NULL);
        snprintf(n, sizeof(n), "%ld", size);
        set_value(out, 8, n);
        snprintf(n, sizeof(n), "%lld", (long long)(page - 1) * (long long)size);
        set_value(out, 9, n);
        out->n = N_PARAMS + 3;
    } else if (kind == ANALYTICS_QOS && out->sql == qos_period_sql) {
        set_value(out, 7, p->bucket && strcmp(p->bucket, "hour") == 0 ? "hour" : "day");
        out->n = N_PARAMS + 1;
    }
    return 0;
}

/* num / den, or null when den is 0. */
static json_t *ratio(double num, long long den)
{
    return den > 0 ? json_real(num / (double)den) : json_null();
}

static json_t *summary_json(const PGresult *res)
{
    if (PQntuples(res) < 1 || PQnfields(res) < 9)
        return NULL;
    long long total = pg_ll(res, 0, 0), in_calls = pg_ll(res, 0, 1);
    long long in_ans = pg_ll(res, 0, 2), out_calls = pg_ll(res, 0, 3);
    long long out_ans = pg_ll(res, 0, 4), ans = pg_ll(res, 0, 5);
    long long billsec = pg_ll(res, 0, 6);
    double ring = pg_d(res, 0, 7);
    long long due = pg_ll(res, 0, 8);
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:I, s:I}", "total_calls", (json_int_t)total,
                     "answered_rate", ratio((double)in_ans, in_calls), "avg_handle_time_sec",
                     ratio((double)billsec, ans), "avg_ring_time_sec", ratio(ring, ans), "asr",
                     ratio((double)out_ans, out_calls), "missed_calls",
                     (json_int_t)(in_calls - in_ans), "callbacks_due", (json_int_t)due);
}

static json_t *by_store_item(const PGresult *res, int i, const void *arg)
{
    (void)arg;
    long long answered = pg_ll(res, i, 3);
    return json_pack("{s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "store_id", pg_json_text(res, i, 0),
                     "store_name", pg_json_text(res, i, 1), "total", (json_int_t)pg_ll(res, i, 2),
                     "answered", (json_int_t)answered, "missed", (json_int_t)pg_ll(res, i, 4),
                     "aht", ratio((double)pg_ll(res, i, 5), answered), "asr",
                     ratio((double)pg_ll(res, i, 7), pg_ll(res, i, 6)));
}

static json_t *by_agent_item(const PGresult *res, int i, const void *arg)
{
    (void)arg;
    long long answered = pg_ll(res, i, 3);
    return json_pack("{s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "ext_number", pg_json_text(res, i, 0),
                     "user_id", pg_json_text(res, i, 1), "total", (json_int_t)pg_ll(res, i, 2),
                     "answered", (json_int_t)answered, "missed", (json_int_t)pg_ll(res, i, 4),
                     "aht", ratio((double)pg_ll(res, i, 5), answered), "avg_mos",
                     ratio(pg_d(res, i, 6), pg_ll(res, i, 7)));
}

/* One missed call, or with 'arg' pointing to true one caller (only_unique). */
static json_t *missed_item(const PGresult *res, int i, const void *arg)
{
    if (*(const bool *)arg)
        return json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "from_uri",
                         pg_json_text(res, i, 1), "attempts", (json_int_t)pg_ll(res, i, 2),
                         "first_ts", pg_json_time(res, i, 3), "last_ts", pg_json_time(res, i, 4),
                         "last_call_id", pg_json_text(res, i, 5), "did_e164",
                         pg_json_text(res, i, 6), "store_id", pg_json_text(res, i, 7),
                         "callback_due", pg_json_bool(res, i, 8));
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "call_id", pg_json_text(res, i, 1),
                     "from_uri", pg_json_text(res, i, 2), "did_e164", pg_json_text(res, i, 3),
                     "store_id", pg_json_text(res, i, 4), "ext_number", pg_json_text(res, i, 5),
                     "start_ts", pg_json_time(res, i, 6), "disposition", pg_json_text(res, i, 7),
                     "callback_due", pg_json_bool(res, i, 8));
}

/* One QoS group; 'arg' is the name of its key. */
static json_t *qos_item(const PGresult *res, int i, const void *arg)
{
    return json_pack("{s:o, s:I, s:o, s:o, s:o, s:I}", (const char *)arg, pg_json_text(res, i, 0),
                     "calls", (json_int_t)pg_ll(res, i, 1), "avg_mos", pg_json_real(res, i, 2),
                     "avg_jitter_ms", pg_json_real(res, i, 3), "avg_loss_pct",
                     pg_json_real(res, i, 4), "poor_calls", (json_int_t)pg_ll(res, i, 5));
}

/* {"items": [...]} of every row, or NULL when memory ran out. */
static json_t *items_json(const PGresult *res, pg_json_row_fn fn, const void *arg)
{
    json_t *items = pg_json_items(res, -1, fn, arg);
    return items ? json_pack("{s:o}", "items", items) : NULL;
}

/* The page of missed calls (or callers), shaped like /api/cdr's. */
static json_t *missed_json(const query_params *p, const PGresult *res)
{
    if (!p || PQntuples(res) < 1 || PQnfields(res) < 9)
        return NULL;
    bool unique = p->only_unique;
    /* the row of an empty page carries only the total: its column 1 is NULL */
    json_t *items = pg_json_items(res, 1, missed_item, &unique);
    if (!items)
        return NULL;
    long page = p->page > 0 ? p->page : 1;
    long size = p->page_size > 0 ? p->page_size : PARAMS_DEFAULT_PAGE_SIZE;
    return json_pack("{s:o, s:I, s:I, s:I}", "items", items, "page", (json_int_t)page, "page_size",
                     (json_int_t)size, "total", (json_int_t)pg_ll(res, 0, 0));
}

static json_t *qos_json(const query_params *p, const PGresult *res)
{
    if (PQnfields(res) < 6)
        return NULL;
    const char *key = "period";
    if (p && p->group_by && strcmp(p->group_by, "store") == 0)
        key = "store_id";
    else if (p && p->group_by && strcmp(p->group_by, "agent") == 0)
        key = "ext_number";
    return items_json(res, qos_item, key);
}

json_t *analytics_json(analytics_kind kind, const query_params *p, const PGresult *res)
{
    if (!res)
        return NULL;
    switch (kind) {
    case ANALYTICS_SUMMARY:
        return summary_json(res);
    case ANALYTICS_BY_STORE:
        return PQnfields(res) < 8 ? NULL : items_json(res, by_store_item, NULL);
    case ANALYTICS_BY_AGENT:
        return PQnfields(res) < 8 ? NULL : items_json(res, by_agent_item, NULL);
    case ANALYTICS_MISSED:
        return missed_json(p, res);
    case ANALYTICS_QOS:
        return qos_json(p, res);
    default:
        return NULL;
    }
}
