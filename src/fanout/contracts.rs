//! Contract look-ups through a cache in memory and in the store, so neither repeated
//! requests nor a restart repeat IB look-ups. Concurrent look-ups of one thing share one
//! IB request, and contracts IB does not know are remembered briefly too
//! ([`NOT_FOUND_TTL`]); both come from [`Lookups`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::error::FanoutError;
use super::lookups::Lookups;
pub use super::lookups::NOT_FOUND_TTL;
use super::source::{MarketDataSource, SourceError};
use super::types::{ChainParams, ContractDetails, ContractSpec, Right, SecType, SymbolMatch};

/// Durable cache of contract details (the store's contract table in production).
pub trait ContractStore: Send + Sync + 'static {
    fn load(&self, key: &str) -> BoxFuture<'_, Option<ContractDetails>>;
    fn save(&self, key: &str, details: &ContractDetails) -> BoxFuture<'_, ()>;
}

type Listing = Arc<Vec<Arc<ContractDetails>>>;

/// Resolves instruments to contracts and lists option chains.
pub struct Contracts {
    source: Arc<dyn MarketDataSource>,
    store: Option<Arc<dyn ContractStore>>,
    deadline: Duration,
    /// Contracts by look-up key and by conId.
    details: Arc<Lookups<String, Arc<ContractDetails>>>,
    /// Option contracts listed per underlying, expiry and right (memory only: listings change).
    listings: Arc<Lookups<String, Listing>>,
    /// Option-chain parameters per underlying conId.
    chains: Arc<Lookups<i64, Arc<Vec<ChainParams>>>>,
}

fn con_id_key(con_id: i64) -> String {
    format!("conid:{con_id}")
}

impl Contracts {
    /// `deadline` bounds every IB look-up (IB may never answer some of them).
    pub fn new(
        source: Arc<dyn MarketDataSource>,
        store: Option<Arc<dyn ContractStore>>,
        deadline: Duration,
    ) -> Contracts {
        Contracts {
            source,
            store,
            deadline,
            details: Arc::default(),
            listings: Arc::default(),
            chains: Arc::default(),
        }
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The one contract `spec` describes (the first IB lists if several match).
    pub async fn resolve(&self, spec: &ContractSpec) -> Result<Arc<ContractDetails>, FanoutError> {
        let key = spec.lookup_key();
        let (source, store, details) = (
            self.source.clone(),
            self.store.clone(),
            self.details.clone(),
        );
        let (spec, deadline) = (spec.clone(), self.deadline);
        self.details
            .get_or_fetch(&key, || async move {
                if let Some(store) = &store
                    && let Some(found) = store.load(&spec.lookup_key()).await
                {
                    let found = Arc::new(found);
                    details.insert(con_id_key(found.contract.con_id), found.clone());
                    return Ok(found);
                }
                let first = source
                    .contract_details(&spec, deadline)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        FanoutError::NotFound(format!("no contract matches {}", describe(&spec)))
                    })?;
                let first = Arc::new(first);
                let by_con_id = con_id_key(first.contract.con_id);
                details.insert(by_con_id.clone(), first.clone());
                if let Some(store) = &store {
                    store.save(&spec.lookup_key(), &first).await;
                    store.save(&by_con_id, &first).await;
                }
                Ok(first)
            })
            .await
    }

    /// The option contracts IB lists for one expiry and right of an underlying, sorted
    /// by strike (IB's chain parameters give the union of strikes over all expiries, so
    /// what is really listed comes from contract details without a strike).
    pub async fn listed_options(
        &self,
        underlying: &ContractSpec,
        params: &ChainParams,
        expiry: &str,
        right: Right,
    ) -> Result<Listing, FanoutError> {
        let query = ContractSpec {
            symbol: underlying.symbol.clone(),
            sec_type: SecType::Option,
            exchange: "SMART".into(),
            currency: underlying.currency.clone(),
            expiry: expiry.to_owned(),
            right: Some(right),
            trading_class: params.trading_class.clone(),
            multiplier: params.multiplier.clone(),
            ..ContractSpec::default()
        };
        let key = query.lookup_key();
        let (source, details, deadline) =
            (self.source.clone(), self.details.clone(), self.deadline);
        self.listings
            .get_or_fetch(&key, || async move {
                let found = with_link(&source, deadline, || {
                    source.contract_details(&query, deadline)
                })
                .await?;
                let mut options: Vec<Arc<ContractDetails>> = found
                    .into_iter()
                    .filter(|d| d.contract.strike.is_some() && d.contract.con_id > 0)
                    .map(|d| {
                        let d = Arc::new(d);
                        details.insert(d.contract.lookup_key(), d.clone());
                        details.insert(con_id_key(d.contract.con_id), d.clone());
                        d
                    })
                    .collect();
                options.sort_by(|a, b| {
                    a.contract
                        .strike
                        .partial_cmp(&b.contract.strike)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                Ok(Arc::new(options))
            })
            .await
    }

    /// Option-chain parameters of an underlying, one entry per exchange and trading class.
    pub async fn option_params(
        &self,
        underlying: &ContractDetails,
    ) -> Result<Arc<Vec<ChainParams>>, FanoutError> {
        let contract = underlying.contract.clone();
        let (source, deadline) = (self.source.clone(), self.deadline);
        self.chains
            .get_or_fetch(&underlying.contract.con_id, || async move {
                let params = with_link(&source, deadline, || {
                    source.option_params(&contract, deadline)
                })
                .await?;
                if params.is_empty() {
                    return Err(FanoutError::NotFound(format!(
                        "IB lists no options on {}",
                        contract.symbol
                    )));
                }
                Ok(Arc::new(params))
            })
            .await
    }

    /// Symbols matching a pattern.
    pub async fn search(&self, pattern: &str) -> Result<Vec<SymbolMatch>, FanoutError> {
        let source = &self.source;
        Ok(with_link(source, self.deadline, || {
            source.matching_symbols(pattern, self.deadline)
        })
        .await?)
    }

    /// IB look-ups in flight now (each shared by every caller waiting for it).
    pub fn lookups_in_flight(&self) -> usize {
        self.details.in_flight() + self.listings.in_flight() + self.chains.in_flight()
    }
}

/// Runs a look-up; if there is no session, waits (within the deadline) for one and
/// tries once more, so a request arriving during a reconnect is served, not refused.
async fn with_link<T, F>(
    source: &Arc<dyn MarketDataSource>,
    deadline: Duration,
    request: impl Fn() -> F,
) -> Result<T, SourceError>
where
    F: Future<Output = Result<T, SourceError>>,
{
    match request().await {
        Err(SourceError::LinkDown) => {
            let mut link = source.link_state();
            let up = async { link.wait_for(|s| s.generation.is_some()).await.is_ok() };
            if tokio::time::timeout(deadline, up).await == Ok(true) {
                request().await
            } else {
                Err(SourceError::LinkDown)
            }
        }
        other => other,
    }
}

/// A short human description of what was asked for.
pub fn describe(spec: &ContractSpec) -> String {
    if spec.con_id > 0 {
        return format!("conId {}", spec.con_id);
    }
    let mut s = format!("{} {:?}", spec.symbol, spec.sec_type);
    if !spec.expiry.is_empty() {
        s.push_str(&format!(" {}", spec.expiry));
    }
    if let Some(k) = spec.strike {
        s.push_str(&format!(" {k}"));
    }
    if let Some(r) = spec.right {
        s.push_str(match r {
            Right::Call => " C",
            Right::Put => " P",
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::fake::FakeSource;

    #[tokio::test(start_paused = true)]
    async fn unknown_contracts_are_not_asked_for_again_until_the_answer_expires() {
        let source = FakeSource::new();
        let contracts = Contracts::new(source.clone(), None, Duration::from_secs(5));
        let unknown = ContractSpec {
            symbol: "NOSUCH".into(),
            ..ContractSpec::default()
        };
        let requests = || *source.detail_requests.lock().unwrap();
        for _ in 0..3 {
            let err = contracts.resolve(&unknown).await.unwrap_err();
            assert!(matches!(err, FanoutError::NotFound(_)), "{err:?}");
        }
        assert_eq!(requests(), 1, "one IB look-up for three requests");

        tokio::time::advance(NOT_FOUND_TTL).await;
        assert!(contracts.resolve(&unknown).await.is_err());
        assert_eq!(requests(), 2, "asked again once the answer expired");
    }
}
