//! A rollups worker holds the cells it wrote and does not read them back at its next step
//! (`projections/src/usage/rollups/held.rs`). What it holds must never stand in for cells someone
//! else wrote since: another node's step, or a clear of all usage.

use super::analytics::{bare_databases, write_records};
use keyledger_projections::usage::{retention, rollups};

/// Every rollup row, sketches included, in one order.
async fn rows(db: &keyledger_commands::Database) -> Vec<(String, String, i64, i64, i64, String)> {
    sqlx::query_as(
        "SELECT grain, period, bucket_ms, requests, latency_sum_us, latency_sketch FROM usage_rollups \
         ORDER BY grain, period, bucket_ms, tenant, key_id, endpoint_id, plugin, outcome, status",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

/// Requests the tenant-wide day cells count.
async fn counted(db: &keyledger_commands::Database) -> i64 {
    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM usage_rollups WHERE grain = 'tenant' AND period = 'day'")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holding_its_cells_folds_what_a_rebuild_folds_beside_another_node() {
    for (test_db, db) in bare_databases().await {
        let backend = test_db.backend;
        let now = chrono::Utc::now();
        let (mut a, mut b) = (rollups::Steps::default(), rollups::Steps::default());
        write_records(&db, 3, now).await;
        assert_eq!(a.next(&db, now).await.unwrap(), 3);
        // Its own cells, held: added to, not read back.
        write_records(&db, 2, now).await;
        assert_eq!(a.next(&db, now).await.unwrap(), 2);
        assert_eq!(counted(&db).await, 5, "{backend:?}");
        // Another node folds the next records into the same cells: what `a` holds is stale.
        write_records(&db, 4, now).await;
        assert_eq!(b.next(&db, now).await.unwrap(), 4);
        write_records(&db, 1, now).await;
        assert_eq!(a.next(&db, now).await.unwrap(), 1);
        assert_eq!(counted(&db).await, 10, "a read back what b wrote ({backend:?})");
        let folded = rows(&db).await;
        rollups::rebuild(&db, now, |_, _| {}).await.unwrap();
        assert_eq!(rows(&db).await, folded, "the same rows as a rebuild ({backend:?})");
        // A rebuild after the oldest batch is gone (retention) reaches the very batch `a` left
        // the checkpoint at, with other cells: what `a` holds is stale all the same.
        write_records(&db, 2, now).await;
        assert_eq!(a.next(&db, now).await.unwrap(), 2);
        sqlx::query("DELETE FROM usage_batches WHERE id = (SELECT MIN(id) FROM usage_batches)")
            .execute(db.pool())
            .await
            .unwrap();
        rollups::rebuild(&db, now, |_, _| {}).await.unwrap();
        let rebuilt = counted(&db).await;
        assert_eq!(rebuilt, 9, "the first three records are gone ({backend:?})");
        write_records(&db, 1, now).await;
        assert_eq!(a.next(&db, now).await.unwrap(), 1);
        assert_eq!(counted(&db).await, rebuilt + 1, "{backend:?}");
        // Nor after all usage is forgotten.
        retention::forget_all(&db).await.unwrap();
        write_records(&db, 3, now).await;
        assert_eq!(a.next(&db, now).await.unwrap(), 3);
        assert_eq!(counted(&db).await, 3, "only what came after the clear ({backend:?})");
        db.close().await;
        test_db.drop_database().await;
    }
}
