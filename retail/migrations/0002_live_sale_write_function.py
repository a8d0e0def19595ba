"""PostgreSQL: `posinv_live_sale_write(jsonb)`, the write of a live sale in
one statement (docs/adr/0009-live-sale-in-one-statement.md).

It does what `live_sale_post`'s general path does for a plain sale, in the
same order and with the same locks: the receipt, the ledger's level locks in
pk order, the negative-stock policy, the moves with their running balances,
the level deltas, one outbox row per changed pair, the lines, the payments
and the idempotency record. A receipt no. that exists answers
`{"general": ...}` before anything is written (a retry); whatever else it
does not handle (a refusal, a move key posted before, a key used meanwhile)
raises SQLSTATE PXGEN or the constraint's error, which rolls the statement
back. Either way the caller then takes the general path, which says what
happened. A later change to this function is a new
migration with CREATE OR REPLACE."""

from django.db import migrations

LIVE_SALE_WRITE = r"""
CREATE OR REPLACE FUNCTION posinv_live_sale_write(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_register bigint := (p->>'register_id')::bigint;
    v_location bigint := (p->>'location_id')::bigint;
    v_code text := p->>'register_code';
    v_receipt_no text := p->>'receipt_no';
    v_recorded_at timestamptz := (p->>'recorded_at')::timestamptz;
    v_now timestamptz;
    v_receipt bigint;
    v_articles bigint[];
    v_locked int;
    v_policy text;
    v_refused int;
    v_recorded int;
    v_changed int;
    l_line_no int[];
    l_article bigint[];
    l_sku text[];
    l_barcode text[];
    l_quantity numeric[];
    l_price numeric[];
    l_discount numeric[];
    l_after numeric[];
BEGIN
    INSERT INTO pos_receipt (register_id, receipt_no, process_id, customer_id, total, currency, created_at, source,
                             recorded_at)
    VALUES (v_register, v_receipt_no, NULL, NULL, (p->>'total')::numeric, p->>'currency',
            (p->>'created_at')::timestamptz, 'live', v_recorded_at)
    ON CONFLICT (register_id, receipt_no) DO NOTHING
    RETURNING id INTO v_receipt;
    IF v_receipt IS NULL THEN
        -- Nothing written: a retry (the caller answers from its record) or a
        -- receipt no. recorded another way (the general path says so).
        RETURN jsonb_build_object('general', 'receipt exists');
    END IF;

    SELECT array_agg(x.line_no ORDER BY x.line_no), array_agg(x.article_id ORDER BY x.line_no),
           array_agg(x.sku ORDER BY x.line_no), array_agg(x.barcode ORDER BY x.line_no),
           array_agg(x.quantity ORDER BY x.line_no), array_agg(x.unit_price ORDER BY x.line_no),
           array_agg(x.discount ORDER BY x.line_no), array_agg(DISTINCT x.article_id)
      INTO l_line_no, l_article, l_sku, l_barcode, l_quantity, l_price, l_discount, v_articles
      FROM jsonb_to_recordset(p->'lines') AS x(line_no int, article_id bigint, sku text, barcode text,
                                               quantity numeric, unit_price numeric, discount numeric);

    -- The ledger's locks (posinv/services/locks.py): the existing levels in
    -- pk order, then the missing ones created in article order and locked.
    -- What is written from here on is stamped after the wait for the locks,
    -- as the ledger does, so moves of one level are stamped in their order.
    PERFORM 1 FROM posinv_stocklevel s
     WHERE s.location_id = v_location AND s.article_id = ANY(v_articles) ORDER BY s.id FOR UPDATE;
    GET DIAGNOSTICS v_locked = ROW_COUNT;
    IF v_locked < cardinality(v_articles) THEN
        v_now := clock_timestamp();
        INSERT INTO posinv_stocklevel (article_id, location_id, on_hand, updated_at)
        SELECT a, v_location, 0, v_now FROM unnest(v_articles) AS a
         WHERE NOT EXISTS (SELECT 1 FROM posinv_stocklevel s WHERE s.article_id = a AND s.location_id = v_location)
         ORDER BY a
        ON CONFLICT (article_id, location_id) DO NOTHING;
        PERFORM 1 FROM posinv_stocklevel s
         WHERE s.location_id = v_location AND s.article_id = ANY(v_articles) ORDER BY s.id FOR UPDATE;
    END IF;
    v_now := clock_timestamp();

    -- Each line's balance after its move (a sale takes, a return puts back),
    -- running over the lines of one article in line order; and the policy.
    SELECT array_agg(b.after ORDER BY b.n), count(*) FILTER (WHERE b.delta < 0 AND b.after < 0),
           (SELECT l.negative_stock FROM posinv_location l WHERE l.id = v_location)
      INTO l_after, v_refused, v_policy
      FROM (SELECT t.n, -t.q AS delta, s.on_hand + sum(-t.q) OVER (PARTITION BY t.a ORDER BY t.n) AS after
              FROM unnest(l_article, l_quantity) WITH ORDINALITY AS t(a, q, n)
              JOIN posinv_stocklevel s ON s.article_id = t.a AND s.location_id = v_location) b;
    IF v_policy IS NULL OR (v_refused > 0 AND v_policy = 'refuse')
       OR cardinality(l_after) IS DISTINCT FROM cardinality(l_article) THEN
        RAISE EXCEPTION 'live sale % left to the general path', v_receipt_no USING ERRCODE = 'PXGEN';
    END IF;

    -- Everything else in one statement: the moves (a move key posted before
    -- violates its unique index and rolls all back: the general path reports
    -- it), the level deltas and one outbox row per pair whose stock changed
    -- (its last balance, in the order the pairs first appear), the lines with
    -- their moves, the payments and the idempotency record with the answer.
    WITH t AS (
        SELECT * FROM unnest(l_line_no, l_article, l_sku, l_barcode, l_quantity, l_price, l_discount, l_after)
               WITH ORDINALITY AS t(line_no, article_id, sku, barcode, quantity, unit_price, discount, after, n)
    ), m AS (
        INSERT INTO posinv_stockmove (article_id, location_id, kind, quantity, counted, balance_after,
                                      idempotency_key, reference, reason, origin, origin_code, created_at)
        SELECT t.article_id, v_location, CASE WHEN t.quantity > 0 THEN 'sale' ELSE 'return' END, -t.quantity, NULL,
               t.after, 'pos:' || v_code || ':' || v_receipt_no || ':' || t.line_no,
               left('receipt ' || v_receipt_no, 120), '', 'register', left(v_code, 120), v_now
          FROM t ORDER BY t.n
        RETURNING id, idempotency_key
    ), d AS (
        SELECT t.article_id, sum(-t.quantity) AS delta, min(t.n) AS first_n,
               (array_agg(t.after ORDER BY t.n DESC))[1] AS last_after
          FROM t GROUP BY t.article_id HAVING sum(-t.quantity) <> 0
    ), u AS (
        UPDATE posinv_stocklevel s SET on_hand = s.on_hand + d.delta, updated_at = v_now
          FROM d WHERE s.article_id = d.article_id AND s.location_id = v_location
        RETURNING 1
    ), o AS (
        INSERT INTO posinv_stockchange (article_id, location_id, on_hand, origin, origin_code, created_at)
        SELECT d.article_id, v_location, d.last_after, 'register', left(v_code, 120), v_now FROM d ORDER BY d.first_n
        RETURNING 1
    ), rl AS (
        INSERT INTO pos_receiptline (receipt_id, line_no, article_id, sku, barcode, quantity, unit_price, discount,
                                     stock_move_id)
        SELECT v_receipt, t.line_no, t.article_id, t.sku, t.barcode, t.quantity, t.unit_price, t.discount, m.id
          FROM t JOIN m ON m.idempotency_key = 'pos:' || v_code || ':' || v_receipt_no || ':' || t.line_no
         ORDER BY t.n
        RETURNING 1
    ), pl AS (
        INSERT INTO pos_paymentline (receipt_id, line_no, method, amount)
        SELECT v_receipt, x.line_no, x.method, x.amount
          FROM jsonb_to_recordset(p->'payments') AS x(line_no int, method text, amount numeric)
         ORDER BY x.line_no
        RETURNING 1
    ), ls AS (
        INSERT INTO retail_livesale (register_id, idempotency_key, request_hash, receipt_id, response, flags, flagged,
                                     line_count, total, created_at, replays)
        VALUES (v_register, p->>'key', p->>'request_hash', v_receipt,
                jsonb_set(p->'response', '{lines}', (
                    SELECT coalesce(jsonb_agg(r.line || jsonb_build_object('on_hand', t.after::text) ORDER BY r.n), '[]')
                      FROM jsonb_array_elements(p->'response'->'lines') WITH ORDINALITY AS r(line, n)
                      JOIN t ON t.n = r.n)),
                p->'flags', jsonb_array_length(p->'flags') > 0, cardinality(l_line_no),
                (p->>'total')::numeric, v_now, 0)
        ON CONFLICT (register_id, idempotency_key) DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ls), (SELECT count(*) FROM o) INTO v_recorded, v_changed;
    IF v_recorded = 0 THEN
        RAISE EXCEPTION 'key % used meanwhile', p->>'key' USING ERRCODE = 'PXGEN';
    END IF;

    RETURN jsonb_build_object('balances', to_jsonb(l_after::text[]), 'changed', v_changed > 0);
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
