//! The whole engine conformance suite on a Redis topology the caller set up
//! (kept apart from `servers.rs`, which the topology tests without the
//! suite share as well).

use std::sync::Arc;

use rotor::engine::redis::{RedisSettings, connect_engine};
use rotor::engine::{Broker, PresenceManager, conformance};

/// Runs every conformance body, one after the other, each on a fresh
/// engine connected with `s`.
pub async fn conformance_suite(s: &RedisSettings) {
    let broker = || async {
        let (b, _) = connect_engine(s).await.expect("connect");
        Arc::new(b) as Arc<dyn Broker>
    };
    let presence = || async {
        let (_, p) = connect_engine(s).await.expect("connect");
        Arc::new(p) as Arc<dyn PresenceManager>
    };
    // The kind names come from the body list's macro, so they are matched
    // literally and the closures named here.
    macro_rules! run_bodies {
        (broker: $($body:ident),* $(,)?) => {
            $(
                eprintln!("conformance body {}", stringify!($body));
                conformance::$body(broker().await).await;
            )*
        };
        (presence: $($body:ident),* $(,)?) => {
            $(
                eprintln!("conformance body {}", stringify!($body));
                conformance::$body(presence().await).await;
            )*
        };
    }
    rotor::engine_conformance_bodies!(run_bodies);
}
