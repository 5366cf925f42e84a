//! Browsing the server's variables under the root into a cached tag list: breadth first, a batch
//! of nodes per Browse request with BrowseNext for the rest, bounded by the most tags allowed;
//! then descriptions, data types and engineering units read in batches.

use std::collections::{HashMap, HashSet, VecDeque};

use opcua::client::Session;
use opcua::types::{
    AttributeId, BrowseDescription, BrowseDirection, BrowseResultMask, ByteString, DataTypeId,
    EUInformation, Error, NodeClass, NodeClassMask, NodeId, ReadValueId, ReferenceDescription,
    ReferenceTypeId, TimestampsToReturn, VariableTypeId, Variant,
};
use uplink_model::{DataType, Tag};

use crate::settings::{Naming, Settings};

/// Nodes per Browse request.
const BROWSE_BATCH: usize = 50;
/// Attribute reads per Read request.
const READ_BATCH: usize = 600;
/// Deepest level browsed below the root.
const MAX_DEPTH: usize = 16;

/// One tag and the node behind it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub tag: Tag,
    pub node: NodeId,
}

/// The browsed tags, by name.
#[derive(Debug, Default)]
pub(crate) struct TagCache {
    pub tags: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// Browsing stopped at the most tags allowed.
    pub truncated: bool,
}

impl TagCache {
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.tags[i])
    }
}

struct Found {
    node: NodeId,
    path: String,
    units_node: Option<NodeId>,
}

async fn browse_batch(
    session: &Session,
    nodes: &[NodeId],
) -> Result<Vec<Vec<ReferenceDescription>>, Error> {
    let request: Vec<BrowseDescription> = nodes
        .iter()
        .map(|node| BrowseDescription {
            node_id: node.clone(),
            browse_direction: BrowseDirection::Forward,
            reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
            include_subtypes: true,
            node_class_mask: (NodeClassMask::OBJECT | NodeClassMask::VARIABLE).bits(),
            result_mask: BrowseResultMask::All as u32,
        })
        .collect();
    let results = session.browse(&request, 1_000, None).await?;
    let mut out = Vec::with_capacity(results.len());
    for result in results {
        let mut references = result.references.unwrap_or_default();
        let mut continuation: ByteString = result.continuation_point;
        while !continuation.is_null_or_empty() {
            let mut next = session
                .browse_next(false, std::slice::from_ref(&continuation))
                .await?;
            let Some(page) = next.pop() else { break };
            references.extend(page.references.unwrap_or_default());
            continuation = page.continuation_point;
        }
        out.push(references);
    }
    Ok(out)
}

/// Browses the variables under the settings' root.
pub(crate) async fn browse(session: &Session, settings: &Settings) -> Result<TagCache, Error> {
    let mut queue: VecDeque<(NodeId, String, usize)> = VecDeque::new();
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut found: Vec<Found> = Vec::new();
    let mut index: HashMap<NodeId, usize> = HashMap::new();
    let mut truncated = false;
    queue.push_back((settings.browse_root.clone(), String::new(), 0));
    seen.insert(settings.browse_root.clone());
    let property_type: NodeId = VariableTypeId::PropertyType.into();
    while !queue.is_empty() {
        let batch: Vec<(NodeId, String, usize)> =
            queue.drain(..queue.len().min(BROWSE_BATCH)).collect();
        let nodes: Vec<NodeId> = batch.iter().map(|(n, _, _)| n.clone()).collect();
        let results = browse_batch(session, &nodes).await?;
        for ((parent, path, depth), references) in batch.into_iter().zip(results) {
            for reference in references {
                if reference.node_id.server_index != 0 {
                    continue;
                }
                let node = reference.node_id.node_id.clone();
                let name = reference
                    .browse_name
                    .name
                    .value()
                    .clone()
                    .unwrap_or_default();
                let is_property = reference.type_definition.node_id == property_type;
                if is_property {
                    if reference.node_class == NodeClass::Variable
                        && name == "EngineeringUnits"
                        && let Some(&at) = index.get(&parent)
                    {
                        found[at].units_node = Some(node);
                    }
                    continue;
                }
                if !seen.insert(node.clone()) {
                    continue;
                }
                let child_path = if path.is_empty() {
                    name
                } else {
                    format!("{path}/{name}")
                };
                if reference.node_class == NodeClass::Variable {
                    if found.len() >= settings.max_tags {
                        truncated = true;
                        continue;
                    }
                    index.insert(node.clone(), found.len());
                    found.push(Found {
                        node: node.clone(),
                        path: child_path.clone(),
                        units_node: None,
                    });
                }
                if depth + 1 < MAX_DEPTH {
                    queue.push_back((node, child_path, depth + 1));
                }
            }
        }
    }
    describe(session, settings, found, truncated).await
}

fn data_type(id: Option<&NodeId>) -> DataType {
    match id.and_then(|id| id.as_data_type_id().ok()) {
        Some(DataTypeId::Boolean) => DataType::Boolean,
        Some(
            DataTypeId::SByte
            | DataTypeId::Byte
            | DataTypeId::Int16
            | DataTypeId::UInt16
            | DataTypeId::Int32
            | DataTypeId::UInt32
            | DataTypeId::Int64
            | DataTypeId::UInt64
            | DataTypeId::Integer
            | DataTypeId::UInteger,
        ) => DataType::Integer,
        Some(DataTypeId::String | DataTypeId::LocalizedText | DataTypeId::DateTime) => {
            DataType::Text
        }
        _ => DataType::Float,
    }
}

/// Reads each variable's description, data type and units, and names it.
async fn describe(
    session: &Session,
    settings: &Settings,
    found: Vec<Found>,
    truncated: bool,
) -> Result<TagCache, Error> {
    let mut reads: Vec<ReadValueId> = Vec::with_capacity(found.len() * 3);
    for f in &found {
        for attribute in [AttributeId::Description, AttributeId::DataType] {
            reads.push(ReadValueId {
                node_id: f.node.clone(),
                attribute_id: attribute as u32,
                ..Default::default()
            });
        }
        if let Some(units) = &f.units_node {
            reads.push(ReadValueId::from(units.clone()));
        }
    }
    let mut answers = Vec::with_capacity(reads.len());
    for batch in reads.chunks(READ_BATCH) {
        answers.extend(
            session
                .read(batch, TimestampsToReturn::Neither, 0.0)
                .await?,
        );
    }
    let mut answers = answers.into_iter();
    let mut tags = Vec::with_capacity(found.len());
    let mut by_name = HashMap::with_capacity(found.len());
    for f in found {
        let description = match answers.next().and_then(|v| v.value) {
            Some(Variant::LocalizedText(text)) => text.text.value().clone().unwrap_or_default(),
            _ => String::new(),
        };
        let data_type = match answers.next().and_then(|v| v.value) {
            Some(Variant::NodeId(id)) => data_type(Some(&id)),
            _ => DataType::Float,
        };
        let units = if f.units_node.is_some() {
            match answers.next().and_then(|v| v.value) {
                Some(Variant::ExtensionObject(object)) => object
                    .inner_as::<EUInformation>()
                    .and_then(|eu| eu.display_name.text.value().clone())
                    .unwrap_or_default(),
                _ => String::new(),
            }
        } else {
            String::new()
        };
        let node_id = f.node.to_string();
        let name = match settings.naming {
            Naming::BrowsePath => f.path.clone(),
            Naming::NodeId => node_id.clone(),
        };
        let mut tag = Tag::new(name.clone(), data_type);
        tag.id = node_id.clone();
        tag.description = description;
        tag.units = units;
        tag.properties.insert("nodeId".into(), node_id);
        tag.properties.insert("browsePath".into(), f.path);
        if by_name.contains_key(&name) {
            // Two nodes with one browse path: the first keeps the name; the other is still
            // reachable by its node id in nodeId naming.
            continue;
        }
        by_name.insert(name, tags.len());
        tags.push(Entry { tag, node: f.node });
    }
    Ok(TagCache {
        tags,
        by_name,
        truncated,
    })
}
