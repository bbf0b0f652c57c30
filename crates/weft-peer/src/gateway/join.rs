//! Running a handful of futures concurrently inside one task (endorsers of several orgs,
//! the orderers of a BFT cluster), stopping as soon as enough have answered. The futures
//! borrow the gateway, so they are polled here rather than spawned.

/// The BFT quorum of a cluster of `n`: with `f = (n - 1) / 3` faults tolerated,
/// `ceil((n + f + 1) / 2)`.
pub fn bft_quorum(n: usize) -> usize {
    let f = n.saturating_sub(1) / 3;
    (n + f + 2) / 2
}

/// Run futures concurrently and collect their outputs in order.
pub async fn futures_join_all<F, T>(futs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    join_until(futs, |_| false).await
}

/// Run futures concurrently; stop early (dropping the rest) once `enough` says so for an
/// output. Returns the outputs obtained, in completion order.
pub async fn join_until<F, T>(
    futs: impl IntoIterator<Item = F>,
    mut enough: impl FnMut(&T) -> bool,
) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outputs = Vec::with_capacity(pending.len());
    std::future::poll_fn(|cx| {
        let mut done = false;
        pending.retain_mut(|f| {
            if done {
                return true;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => {
                    done = enough(&v);
                    outputs.push(v);
                    false
                }
                std::task::Poll::Pending => true,
            }
        });
        if done || pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bft_quorum_as_fabric_computes_it() {
        // n = 3f + 1 nodes need 2f + 1; others per ceil((n + f + 1) / 2).
        assert_eq!(
            [1, 2, 3, 4, 5, 7, 10].map(bft_quorum),
            [1, 2, 2, 3, 4, 5, 7]
        );
    }

    #[tokio::test]
    async fn join_until_stops_at_enough() {
        let futs = (0..5u32).map(|i| async move {
            if i >= 3 {
                std::future::pending::<()>().await;
            }
            i
        });
        let mut seen = 0;
        let out = join_until(futs, |_| {
            seen += 1;
            seen == 2
        })
        .await;
        assert_eq!(out, vec![0, 1]);
    }
}
