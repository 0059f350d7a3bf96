//! Flows: secret tasks passed as task arguments, env-var secrets, a parallel engine with masked
//! logs — everything of `sigil_flow`, with one difference: this [`Flow`] plugs the server source
//! into the process-wide chain when it is made, so that a secret task of a run without its own
//! resolver reads from a Sigil server when the settings say `backend = "server"`. (`sigil_flow`
//! alone knows nothing of servers.)

pub use sigil_flow::*;

/// A flow (see [`sigil_flow::Flow`], whose every method it has).
#[derive(Debug)]
pub struct Flow(sigil_flow::Flow);

impl Flow {
    /// A new, empty flow named `name`; the process-wide chain gains the server source.
    pub fn new(name: impl Into<String>) -> Self {
        sigil_client::register();
        Flow(sigil_flow::Flow::new(name))
    }

    /// The engine's flow.
    pub fn into_inner(self) -> sigil_flow::Flow {
        self.0
    }
}

impl std::ops::Deref for Flow {
    type Target = sigil_flow::Flow;

    fn deref(&self) -> &sigil_flow::Flow {
        &self.0
    }
}

impl std::ops::DerefMut for Flow {
    fn deref_mut(&mut self) -> &mut sigil_flow::Flow {
        &mut self.0
    }
}
