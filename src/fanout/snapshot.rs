//! One quote now, for callers that do not stream: the cached value of a feed that holds
//! one, else a one-off snapshot request to IB (delayed if live is refused and allowed).

use std::time::{Duration, SystemTime};

use super::error::FanoutError;
use super::registry::Fanout;
use super::source::SourceError;
use super::tick::apply;
use super::types::{ContractSpec, OptionExtras, Quote};

impl Fanout {
    /// The instrument's quote: from the cache when a live feed has data, otherwise asked of
    /// IB once within `deadline`. A snapshot IB answers with no values is a missed deadline.
    pub async fn snapshot(
        &self,
        contract: &ContractSpec,
        allow_delayed: bool,
        deadline: Duration,
    ) -> Result<Quote, FanoutError> {
        if let Some(view) = self.cached(contract.con_id)
            && view.quote.has_data()
        {
            return Ok(view.quote.clone());
        }
        let source = self.source();
        let mut asked = self.settings().data_type;
        let ticks = match source.snapshot(contract, asked, deadline).await {
            Err(SourceError::NoPermission(_)) if allow_delayed && !asked.is_delayed() => {
                asked = asked.delayed();
                source.snapshot(contract, asked, deadline).await?
            }
            other => other?,
        };
        let mut quote = Quote::empty(contract.con_id, &contract.symbol, asked);
        let mut extras = OptionExtras::default();
        for t in &ticks {
            apply(&mut quote, &mut extras, t);
        }
        if !quote.has_data() {
            return Err(FanoutError::Deadline(deadline));
        }
        quote.sequence = 1;
        quote.received_at = SystemTime::now();
        Ok(quote)
    }
}
