//! Contract look-ups through a cache in memory and in the store, so neither repeated
//! requests nor a restart repeat IB look-ups. Contracts IB does not know are remembered
//! briefly too ([`NOT_FOUND_TTL`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::error::FanoutError;
use super::source::{MarketDataSource, SourceError};
use super::types::{ChainParams, ContractDetails, ContractSpec, Right, SecType, SymbolMatch};

/// How long an answer "IB knows no such contract" is believed without asking IB again.
/// Long enough that a client repeating hundreds of unknown symbols costs no IB requests
/// (each would be a request and a cancel against the message budget); short because IB
/// lists new contracts during the day (new expiries, new listings).
pub const NOT_FOUND_TTL: Duration = Duration::from_secs(60);

/// Durable cache of contract details (the store's contract table in production).
pub trait ContractStore: Send + Sync + 'static {
    fn load(&self, key: &str) -> BoxFuture<'_, Option<ContractDetails>>;
    fn save(&self, key: &str, details: &ContractDetails) -> BoxFuture<'_, ()>;
}

/// Resolves instruments to contracts and lists option chains.
pub struct Contracts {
    source: Arc<dyn MarketDataSource>,
    store: Option<Arc<dyn ContractStore>>,
    deadline: Duration,
    memory: Mutex<HashMap<String, Arc<ContractDetails>>>,
    /// Option contracts listed per underlying, expiry and right (memory only: listings change).
    listings: Mutex<HashMap<String, Arc<Vec<Arc<ContractDetails>>>>>,
    chains: Mutex<HashMap<i64, Arc<Vec<ChainParams>>>>,
    /// Look-ups IB answered with "not found", with when the answer expires.
    not_found: Mutex<HashMap<String, (Instant, FanoutError)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
            memory: Mutex::new(HashMap::new()),
            listings: Mutex::new(HashMap::new()),
            chains: Mutex::new(HashMap::new()),
            not_found: Mutex::new(HashMap::new()),
        }
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The one contract `spec` describes (the first IB lists if several match).
    pub async fn resolve(&self, spec: &ContractSpec) -> Result<Arc<ContractDetails>, FanoutError> {
        let key = spec.lookup_key();
        if let Some(hit) = lock(&self.memory).get(&key).cloned() {
            return Ok(hit);
        }
        if let Some(store) = &self.store
            && let Some(details) = store.load(&key).await
        {
            return Ok(self.remember(&key, Arc::new(details)));
        }
        if let Some(miss) = self.recent_miss(&key) {
            return Err(miss);
        }
        let first = match self.look_up(spec).await {
            Ok(first) => first,
            Err(e) => {
                if matches!(e, FanoutError::NotFound(_)) {
                    self.remember_miss(&key, &e);
                }
                return Err(e);
            }
        };
        let details = self.remember(&key, Arc::new(first));
        if let Some(store) = &self.store {
            store.save(&key, &details).await;
            store
                .save(&con_id_key(details.contract.con_id), &details)
                .await;
        }
        Ok(details)
    }

    /// The first contract IB lists for `spec`.
    async fn look_up(&self, spec: &ContractSpec) -> Result<ContractDetails, FanoutError> {
        let found = self.source.contract_details(spec, self.deadline).await?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| FanoutError::NotFound(format!("no contract matches {}", describe(spec))))
    }

    /// IB's "not found" for `key`, while it is fresh.
    fn recent_miss(&self, key: &str) -> Option<FanoutError> {
        let misses = lock(&self.not_found);
        let (until, error) = misses.get(key)?;
        (Instant::now() < *until).then(|| error.clone())
    }

    fn remember_miss(&self, key: &str, error: &FanoutError) {
        let now = Instant::now();
        let mut misses = lock(&self.not_found);
        // Expired answers go as new ones come, so the map stays as small as the
        // unknown symbols asked for within one TTL.
        misses.retain(|_, (until, _)| *until > now);
        misses.insert(key.to_owned(), (now + NOT_FOUND_TTL, error.clone()));
    }

    fn remember(&self, key: &str, details: Arc<ContractDetails>) -> Arc<ContractDetails> {
        let mut memory = lock(&self.memory);
        memory.insert(key.to_owned(), details.clone());
        memory.insert(con_id_key(details.contract.con_id), details.clone());
        details
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
    ) -> Result<Arc<Vec<Arc<ContractDetails>>>, FanoutError> {
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
        let key = format!("listing:{}", query.lookup_key());
        if let Some(hit) = lock(&self.listings).get(&key).cloned() {
            return Ok(hit);
        }
        let found = self
            .with_link(|| self.source.contract_details(&query, self.deadline))
            .await?;
        let mut options: Vec<Arc<ContractDetails>> = found
            .into_iter()
            .filter(|d| d.contract.strike.is_some() && d.contract.con_id > 0)
            .map(|d| {
                let key = d.contract.lookup_key();
                self.remember(&key, Arc::new(d))
            })
            .collect();
        options.sort_by(|a, b| {
            a.contract
                .strike
                .partial_cmp(&b.contract.strike)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let options = Arc::new(options);
        lock(&self.listings).insert(key, options.clone());
        Ok(options)
    }

    /// Option-chain parameters of an underlying, one entry per exchange and trading class.
    pub async fn option_params(
        &self,
        underlying: &ContractDetails,
    ) -> Result<Arc<Vec<ChainParams>>, FanoutError> {
        let con_id = underlying.contract.con_id;
        if let Some(hit) = lock(&self.chains).get(&con_id).cloned() {
            return Ok(hit);
        }
        let params = self
            .with_link(|| {
                self.source
                    .option_params(&underlying.contract, self.deadline)
            })
            .await?;
        if params.is_empty() {
            return Err(FanoutError::NotFound(format!(
                "IB lists no options on {}",
                underlying.contract.symbol
            )));
        }
        let params = Arc::new(params);
        lock(&self.chains).insert(con_id, params.clone());
        Ok(params)
    }

    /// Symbols matching a pattern.
    pub async fn search(&self, pattern: &str) -> Result<Vec<SymbolMatch>, FanoutError> {
        Ok(self
            .with_link(|| self.source.matching_symbols(pattern, self.deadline))
            .await?)
    }

    /// Runs a look-up; if there is no session, waits (within the deadline) for one and
    /// tries once more, so a request arriving during a reconnect is served, not refused.
    async fn with_link<T, F>(&self, request: impl Fn() -> F) -> Result<T, SourceError>
    where
        F: std::future::Future<Output = Result<T, SourceError>>,
    {
        match request().await {
            Err(SourceError::LinkDown) => {
                let mut link = self.source.link_state();
                let up = async { link.wait_for(|s| s.generation.is_some()).await.is_ok() };
                if tokio::time::timeout(self.deadline, up).await == Ok(true) {
                    request().await
                } else {
                    Err(SourceError::LinkDown)
                }
            }
            other => other,
        }
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
