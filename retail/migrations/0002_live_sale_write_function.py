"""PostgreSQL: `posinv_live_sale_write(jsonb)`, the write of a live sale in
one statement (docs/adr/0009-live-sale-in-one-statement.md).

It does what `live_sale_post`'s general path does for a plain sale, in the
same order and with the same locks: the receipt, the ledger's level locks in
pk order, the negative-stock policy, the moves with their running balances,
the level deltas, one outbox row per changed pair, the lines, the payments
and the idempotency record. Whatever it does not handle (a used key, a
receipt no. taken, a refusal, a move key posted before) raises SQLSTATE
PXGEN, which rolls the statement back; the caller then takes the general
path, which says what happened. A later change to this function is a new
migration with CREATE OR REPLACE."""

from django.db import migrations

LIVE_SALE_WRITE = r"""
CREATE OR REPLACE FUNCTION posinv_live_sale_write(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_register bigint := (p->>'register_id')::bigint;
    v_location bigint := (p->>'location_id')::bigint;
    v_origin_code text := p->>'register_code';
    v_receipt_no text := p->>'receipt_no';
    v_now timestamptz := (p->>'now')::timestamptz;
    v_receipt bigint;
    v_policy text;
    v_refused int;
    v_count int;
    v_line_nos int[];
    v_articles bigint[];
    v_deltas numeric[];
    v_afters numeric[];
    v_moves bigint[];
BEGIN
    IF EXISTS (SELECT 1 FROM retail_livesale WHERE register_id = v_register AND idempotency_key = p->>'key') THEN
        RETURN jsonb_build_object('general', 'key used before');
    END IF;

    INSERT INTO pos_receipt (register_id, receipt_no, process_id, customer_id, total, currency, created_at, source,
                             recorded_at)
    VALUES (v_register, v_receipt_no, NULL, NULL, (p->>'total')::numeric, p->>'currency',
            (p->>'created_at')::timestamptz, 'live', v_now)
    ON CONFLICT (register_id, receipt_no) DO NOTHING
    RETURNING id INTO v_receipt;
    IF v_receipt IS NULL THEN
        RAISE EXCEPTION 'receipt % exists', v_receipt_no USING ERRCODE = 'PXGEN';
    END IF;

    -- The ledger's locks (posinv/services/locks.py): the existing levels in
    -- pk order, then the missing ones created in article order and locked.
    PERFORM 1 FROM posinv_stocklevel s
     WHERE s.location_id = v_location
       AND s.article_id IN (SELECT (e->>'article_id')::bigint FROM jsonb_array_elements(p->'lines') e)
     ORDER BY s.id FOR UPDATE;
    INSERT INTO posinv_stocklevel (article_id, location_id, on_hand, updated_at)
    SELECT t.a, v_location, 0, v_now
      FROM (SELECT DISTINCT (e->>'article_id')::bigint AS a FROM jsonb_array_elements(p->'lines') e) t
     WHERE NOT EXISTS (SELECT 1 FROM posinv_stocklevel s WHERE s.article_id = t.a AND s.location_id = v_location)
     ORDER BY t.a
    ON CONFLICT (article_id, location_id) DO NOTHING;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM 1 FROM posinv_stocklevel s
         WHERE s.location_id = v_location
           AND s.article_id IN (SELECT (e->>'article_id')::bigint FROM jsonb_array_elements(p->'lines') e)
         ORDER BY s.id FOR UPDATE;
    END IF;

    SELECT negative_stock INTO v_policy FROM posinv_location WHERE id = v_location;
    IF v_policy IS NULL THEN
        RAISE EXCEPTION 'location % unknown', v_location USING ERRCODE = 'PXGEN';
    END IF;

    -- Each line's move (a sale takes, a return puts back) and the balance
    -- after it, running over the lines of the same article in line order.
    SELECT array_agg(b.line_no ORDER BY b.line_no), array_agg(b.article_id ORDER BY b.line_no),
           array_agg(b.delta ORDER BY b.line_no), array_agg(b.after ORDER BY b.line_no),
           count(*) FILTER (WHERE b.delta < 0 AND b.after < 0)
      INTO v_line_nos, v_articles, v_deltas, v_afters, v_refused
      FROM (SELECT l.line_no, l.article_id, -l.quantity AS delta,
                   s.on_hand + sum(-l.quantity) OVER (PARTITION BY l.article_id ORDER BY l.line_no) AS after
              FROM jsonb_to_recordset(p->'lines') AS l(line_no int, article_id bigint, quantity numeric)
              JOIN posinv_stocklevel s ON s.article_id = l.article_id AND s.location_id = v_location) b;
    IF v_refused > 0 AND v_policy = 'refuse' THEN
        RAISE EXCEPTION 'negative stock refused' USING ERRCODE = 'PXGEN';
    END IF;
    IF cardinality(v_line_nos) IS DISTINCT FROM jsonb_array_length(p->'lines') THEN
        RAISE EXCEPTION 'lines without a level' USING ERRCODE = 'PXGEN';
    END IF;

    -- A move key posted before (a receipt recorded and removed) violates
    -- the unique key and rolls everything back: the general path reports it.
    WITH m AS (
        INSERT INTO posinv_stockmove (article_id, location_id, kind, quantity, counted, balance_after,
                                      idempotency_key, reference, reason, origin, origin_code, created_at)
        SELECT t.article_id, v_location, CASE WHEN t.delta < 0 THEN 'sale' ELSE 'return' END, t.delta, NULL,
               t.after, 'pos:' || v_origin_code || ':' || v_receipt_no || ':' || t.line_no,
               left('receipt ' || v_receipt_no, 120), '', 'register', left(v_origin_code, 120), v_now
          FROM unnest(v_line_nos, v_articles, v_deltas, v_afters) WITH ORDINALITY AS t(line_no, article_id, delta, after, n)
         ORDER BY t.n
        RETURNING id, idempotency_key
    )
    SELECT array_agg(m.id ORDER BY t.n) INTO v_moves
      FROM unnest(v_line_nos) WITH ORDINALITY AS t(line_no, n)
      JOIN m ON m.idempotency_key = 'pos:' || v_origin_code || ':' || v_receipt_no || ':' || t.line_no;

    -- The level deltas and one outbox row per pair whose stock changed
    -- (its last balance), in the order the pairs first appear.
    WITH d AS (
        SELECT t.article_id, sum(t.delta) AS delta, min(t.n) AS first_n,
               (array_agg(t.after ORDER BY t.n DESC))[1] AS last_after
          FROM unnest(v_articles, v_deltas, v_afters) WITH ORDINALITY AS t(article_id, delta, after, n)
         GROUP BY t.article_id
        HAVING sum(t.delta) <> 0
    ), u AS (
        UPDATE posinv_stocklevel s SET on_hand = s.on_hand + d.delta, updated_at = v_now
          FROM d WHERE s.article_id = d.article_id AND s.location_id = v_location
        RETURNING 1
    )
    INSERT INTO posinv_stockchange (article_id, location_id, on_hand, origin, origin_code, created_at)
    SELECT d.article_id, v_location, d.last_after, 'register', left(v_origin_code, 120), v_now
      FROM d ORDER BY d.first_n;

    INSERT INTO pos_receiptline (receipt_id, line_no, article_id, sku, barcode, quantity, unit_price, discount,
                                 stock_move_id)
    SELECT v_receipt, l.line_no, l.article_id, l.sku, l.barcode, l.quantity, l.unit_price, l.discount, t.move_id
      FROM jsonb_to_recordset(p->'lines') AS l(line_no int, article_id bigint, sku text, barcode text,
                                               quantity numeric, unit_price numeric, discount numeric)
      JOIN unnest(v_line_nos, v_moves) AS t(line_no, move_id) ON t.line_no = l.line_no
     ORDER BY l.line_no;

    INSERT INTO pos_paymentline (receipt_id, line_no, method, amount)
    SELECT v_receipt, x.line_no, x.method, x.amount
      FROM jsonb_to_recordset(p->'payments') AS x(line_no int, method text, amount numeric)
     ORDER BY x.line_no;

    INSERT INTO retail_livesale (register_id, idempotency_key, request_hash, receipt_id, response, flags, flagged,
                                 line_count, total, created_at, replays)
    VALUES (v_register, p->>'key', p->>'request_hash', v_receipt,
            jsonb_set(p->'response', '{lines}', (
                SELECT coalesce(jsonb_agg(r.line || jsonb_build_object('on_hand', t.after::text) ORDER BY r.n), '[]')
                  FROM jsonb_array_elements(p->'response'->'lines') WITH ORDINALITY AS r(line, n)
                  JOIN unnest(v_afters) WITH ORDINALITY AS t(after, n) ON t.n = r.n)),
            p->'flags', jsonb_array_length(p->'flags') > 0, jsonb_array_length(p->'lines'),
            (p->>'total')::numeric, v_now, 0)
    ON CONFLICT (register_id, idempotency_key) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key used meanwhile' USING ERRCODE = 'PXGEN';
    END IF;

    RETURN jsonb_build_object('balances', (SELECT jsonb_agg(a::text) FROM unnest(v_afters) AS a));
END
$fn$;
"""


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # No parameters: the body's % signs are RAISE placeholders, not the driver's.
        schema_editor.execute(LIVE_SALE_WRITE, params=None)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS posinv_live_sale_write(jsonb)", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("retail", "0001_initial"),
        ("pos", "0003_register_pull_token_encrypted"),
        ("posinv", "0003_hot_path_indexes"),
    ]

    operations = [migrations.RunPython(create_function, drop_function)]
