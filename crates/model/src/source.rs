//! What a data source is and what it can do, as it describes itself.

use serde::{Deserialize, Serialize};

use crate::{Function, FunctionDescriptor};

/// A data source as apps and the hub see it.
///
/// ```
/// use uplink_model::{Capabilities, DataSourceDescriptor};
///
/// let source = DataSourceDescriptor {
///     name: "plant-a".into(),
///     kind: "sqlite".into(),
///     description: "Line 1 historian export".into(),
///     capabilities: Capabilities::all_from_raw(),
/// };
/// let json = serde_json::to_value(&source).unwrap();
/// assert_eq!(json["capabilities"]["processed"][0]["name"], "INTERP");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceDescriptor {
    /// Unique name on its connector; what grants refer to.
    pub name: String,
    /// The adapter behind it (`simulated`, `csv`, `sqlite`…).
    pub kind: String,
    /// What it holds, for people.
    #[serde(default)]
    pub description: String,
    /// The queries it answers.
    pub capabilities: Capabilities,
}

/// The queries a data source answers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Tag search by name pattern.
    pub search: bool,
    /// Current values.
    pub snapshot: bool,
    /// Stored values in a range.
    pub raw: bool,
    /// Shape-preserving down-sampling.
    pub plot: bool,
    /// Interpolated values at given times.
    pub at_times: bool,
    /// The processed functions offered (empty: none).
    #[serde(default)]
    pub processed: Vec<FunctionDescriptor>,
    /// Pushes new current values to subscribers.
    pub subscribe: bool,
    /// Has alarms and events (read by time range, pushed to subscribers).
    #[serde(default)]
    pub events: bool,
    /// Accepts writes: the source can set values *and* its site turned writing on for at least
    /// one tag pattern. Only such a source is offered for writing on the consent page.
    #[serde(default)]
    pub write: bool,
}

impl Capabilities {
    /// Everything a source gets from a raw read plus the model's aggregation: search, snapshot,
    /// raw, plot, values at times and every processed function; no push.
    pub fn all_from_raw() -> Self {
        Self {
            search: true,
            snapshot: true,
            raw: true,
            plot: true,
            at_times: true,
            processed: Function::all_descriptors(),
            subscribe: false,
            events: false,
            write: false,
        }
    }

    /// What a source of live values without history of its own offers (a device polled or a
    /// broker subscribed to): search, snapshot and push; history comes from recording it.
    pub fn live_only() -> Self {
        Self {
            search: true,
            snapshot: true,
            subscribe: true,
            ..Self::default()
        }
    }

    /// True when `function` is among the processed functions offered.
    pub fn supports(&self, function: Function) -> bool {
        self.processed.iter().any(|d| d.name == function)
    }
}
