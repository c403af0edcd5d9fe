//! The contract cache in the store: the fan-out's [`ContractStore`] over the store's
//! contract table.

use futures::FutureExt;
use futures::future::BoxFuture;
use prost::Message;

use crate::api::market_data::convert::{details_from_pb, details_to_pb};
use crate::fanout::ContractDetails;
use crate::fanout::contracts::ContractStore;
use crate::proto::ibstream::v1 as pb;
use crate::store::Store;

/// Contract details kept in the store's contract table, encoded as the public
/// `ContractDetails` message.
#[derive(Debug, Clone)]
pub struct StoreContracts(pub Store);

impl ContractStore for StoreContracts {
    fn load(&self, key: &str) -> BoxFuture<'_, Option<ContractDetails>> {
        let key = key.to_owned();
        async move {
            let found = match key
                .strip_prefix("conid:")
                .and_then(|id| id.parse::<i64>().ok())
            {
                Some(con_id) => self.0.contract_by_con_id(con_id).await,
                None => self.0.contract_by_key(&key).await,
            };
            let bytes = match found {
                Ok(bytes) => bytes?,
                Err(e) => {
                    tracing::warn!(error = %e, "contract cache unavailable");
                    return None;
                }
            };
            match pb::ContractDetails::decode(bytes.as_slice()) {
                Ok(d) => details_from_pb(&d),
                Err(e) => {
                    tracing::warn!(error = %e, key, "ignoring an unreadable cached contract");
                    None
                }
            }
        }
        .boxed()
    }

    fn save(&self, key: &str, details: &ContractDetails) -> BoxFuture<'_, ()> {
        let key = key.to_owned();
        let con_id = details.contract.con_id;
        let payload = details_to_pb(details).encode_to_vec();
        async move {
            if let Err(e) = self.0.put_contract(&key, con_id, &payload).await {
                tracing::warn!(error = %e, "contract not cached");
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::{ContractSpec, SecType};

    #[tokio::test]
    async fn contracts_survive_in_the_store() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let cache = StoreContracts(store);
        let details = ContractDetails {
            contract: ContractSpec {
                con_id: 265598,
                symbol: "AAPL".into(),
                sec_type: SecType::Stock,
                exchange: "SMART".into(),
                primary_exchange: "NASDAQ".into(),
                currency: "USD".into(),
                ..ContractSpec::default()
            },
            long_name: "APPLE INC".into(),
            min_tick: 0.01,
            valid_exchanges: vec!["SMART".into(), "NASDAQ".into()],
            ..ContractDetails::default()
        };
        cache.save("STK|AAPL", &details).await;
        assert_eq!(cache.load("STK|AAPL").await, Some(details.clone()));
        assert_eq!(cache.load("conid:265598").await, Some(details));
        assert_eq!(cache.load("conid:1").await, None);
    }
}
