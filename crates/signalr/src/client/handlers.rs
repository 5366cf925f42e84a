//! Methods the server may invoke on the client, with results ("client results").

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::arguments::{bind_arguments, to_value};
use crate::hub_error::HubError;
use crate::protocol::Arguments;

type HandlerFn =
    Arc<dyn Fn(Arguments) -> BoxFuture<'static, Result<Value, HubError>> + Send + Sync>;

/// The client's methods, by name.
#[derive(Default, Clone)]
pub(crate) struct Handlers {
    methods: HashMap<String, HandlerFn>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.methods.keys().collect();
        names.sort();
        f.debug_list().entries(names).finish()
    }
}

impl Handlers {
    pub fn insert<A, R, F, Fut>(&mut self, name: String, handler: F)
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HubError>> + Send + 'static,
    {
        let target = name.clone();
        let handler = Arc::new(handler);
        self.methods.insert(
            name,
            Arc::new(
                move |arguments| match bind_arguments::<A>(&target, arguments) {
                    Ok(args) => handler(args).map(|r| r.and_then(to_value)).boxed(),
                    Err(e) => futures::future::ready(Err(e)).boxed(),
                },
            ),
        );
    }

    pub fn call(
        &self,
        target: &str,
        arguments: Arguments,
    ) -> Option<BoxFuture<'static, Result<Value, HubError>>> {
        self.methods.get(target).map(|h| h(arguments))
    }
}
