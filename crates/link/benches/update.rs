//! One live update of 1 000 values, as the link and the app hub carry it, beside the derived
//! form it replaced, in one process:
//!
//! - **On the link**: the connector encoding `SubscriptionUpdate(id, update)`'s arguments as
//!   MessagePack (maps keyed by field name, as `uplink-signalr` sends them), and the hub
//!   binding them back to the typed update. The baseline is the form before: each value's
//!   fields through `#[serde(flatten)]`, its status through an untagged enum, its time through
//!   a `String` of its own.
//! - **To an app on the app hub**: an item (`{"event","id","values"}`) encoded once, as the
//!   SignalR frame carries it, beside the way before: encoded, parsed back into a
//!   `serde_json::Value`, and encoded again by the SignalR server.
//!
//! Run with `cargo bench -p uplink-link --bench update`.
#![allow(clippy::print_stdout)]

use chrono::{DateTime, SecondsFormat, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use uplink_link::{SubscriptionUpdate, TagUpdate};
use uplink_measure::{Runs, compare};
use uplink_model::TagValue;

const VALUES: usize = 1_000;

/// The form before, field for field.
mod before {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct Update {
        pub seq: u64,
        pub values: Vec<Value>,
        pub dropped: u64,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Value {
        pub tag: String,
        #[serde(flatten)]
        pub value: Tagged,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Tagged {
        #[serde(with = "time")]
        pub time: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub value: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        #[serde(default)]
        pub status: Status,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub units: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_status_code: Option<u32>,
    }

    #[derive(Default)]
    pub struct Status(pub String);

    impl Serialize for Status {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&self.0)
        }
    }

    impl<'de> Deserialize<'de> for Status {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Wire {
                Code(u8),
                Name(String),
            }
            Ok(match Wire::deserialize(d)? {
                Wire::Code(code) => Status(code.to_string()),
                Wire::Name(name) => Status(name),
            })
        }
    }

    mod time {
        use super::*;

        pub fn serialize<S: serde::Serializer>(
            at: &DateTime<Utc>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }

        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<DateTime<Utc>, D::Error> {
            let text = String::deserialize(d)?;
            DateTime::parse_from_rfc3339(&text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        }
    }
}

/// An app hub item, as the stream's producer writes it.
#[derive(Serialize)]
struct Item<'a, V> {
    event: &'a str,
    id: &'a str,
    values: &'a [V],
}

fn main() {
    let time =
        Utc.with_ymd_and_hms(2026, 12, 7, 11, 0, 0).unwrap() + chrono::TimeDelta::milliseconds(123);
    let update = SubscriptionUpdate {
        seq: 7,
        values: (0..VALUES)
            .map(|n| TagUpdate {
                tag: format!("sim.sinusoid.{n}"),
                value: TagValue::number(time, n as f64 * 0.731),
            })
            .collect(),
        events: Vec::new(),
        dropped: 0,
    };
    let old = before::Update {
        seq: 7,
        values: update
            .values
            .iter()
            .map(|u| before::Value {
                tag: u.tag.clone(),
                value: before::Tagged {
                    time: u.value.time,
                    value: u.value.value,
                    text: None,
                    status: before::Status("good".into()),
                    units: None,
                    source_status_code: None,
                },
            })
            .collect(),
        dropped: 0,
    };
    let new_bytes = packed(&("sub_1", &update));
    let old_bytes = packed(&("sub_1", &old));
    assert_eq!(new_bytes.len(), old_bytes.len(), "the same wire form");
    let runs = Runs::new(20, 301);
    println!(
        "one live update of {VALUES} values ({} bytes of MessagePack arguments):",
        new_bytes.len()
    );
    let encode_now = runs.time(|| packed(&("sub_1", &update)));
    let encode_before = runs.time(|| packed(&("sub_1", &old)));
    println!(
        "  {}",
        compare(
            "link, encode",
            &encode_now,
            "derived (flatten)",
            &encode_before
        )
    );
    let decode_now =
        runs.time(|| rmp_serde::from_slice::<(String, SubscriptionUpdate)>(&new_bytes).unwrap());
    let decode_before =
        runs.time(|| rmp_serde::from_slice::<(String, before::Update)>(&old_bytes).unwrap());
    println!(
        "  {}",
        compare(
            "link, decode",
            &decode_now,
            "derived (flatten)",
            &decode_before
        )
    );
    let id = "g_0123456789abcdef-42-41000-0";
    let once = runs.time(|| {
        serde_json::to_vec(&Item {
            event: "values",
            id,
            values: &update.values,
        })
        .unwrap()
    });
    let twice = runs.time(|| {
        let item = serde_json::to_vec(&Item {
            event: "values",
            id,
            values: &old.values,
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&item).unwrap();
        serde_json::to_vec(&value).unwrap()
    });
    println!(
        "  {}",
        compare(
            "app hub item, encoded once",
            &once,
            "encoded, parsed, encoded again",
            &twice
        )
    );
}

/// The arguments `(id, update)` as `uplink-signalr` encodes them for MessagePack.
fn packed<T: Serialize>(arguments: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    arguments
        .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
        .unwrap();
    out
}
