//! The conformance suite: the same cases, with the same expectations, against the fs backend
//! (a temp dir) and the S3 backend (the test S3 server; see `common::S3_ENV_HELP`).

#[path = "conformance/cases.rs"]
mod cases;
mod common;

use common::{FsFixture, S3Fixture};

macro_rules! conformance {
    ($backend:ident, $fixture:ty) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        cases::$name(<$fixture as common::Fixture>::new(stringify!($name)).await)
                            .await;
                    }
                };
            }

            case!(round_trip);
            case!(second_put_is_not_created);
            case!(concurrent_puts_store_one_object);
            case!(verify_detects_corruption);
            case!(verify_reports_missing);
            case!(heads_answer_each_object_in_the_order_asked);
            case!(empty_blob);
            case!(large_blob_30mb);
            case!(large_stream_30mb);
            case!(put_stream_matches_put);
            case!(list_returns_every_key);
            case!(deferred_puts_become_durable_at_sync);
            case!(objects_list_sizes_and_removal_respects_the_cutoff);
            case!(trash_keeps_a_removal_recoverable_until_its_own_period_ends);
            case!(the_stores_clock_reads_close_to_this_hosts);
            case!(ledger_heads_live_beside_the_objects);
        }
    };
}

conformance!(fs, FsFixture);
conformance!(s3, S3Fixture);
