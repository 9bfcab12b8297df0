-- pgbench: the raw bid transaction, for comparison with bids over HTTP:
-- lock the item, read its standing, insert the bid, update the item.
\set item random(1, :items)
BEGIN;
SELECT price, bid_count, sealed FROM pgb_items WHERE id = :item FOR UPDATE;
INSERT INTO pgb_bids (item_id, user_id, seq, sealed, created_at)
    VALUES (:item, :client_id, 0, '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f', now());
UPDATE pgb_items SET price = price + 1, bid_count = bid_count + 1 WHERE id = :item;
END;
