//! Background batch production: loading and augmentation overlap compute.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::augment::{batch_rng, epoch_order, Batch};
use crate::pipeline::{make_batch, Pipeline};
use crate::{Normalization, Split};

/// Batches buffered per worker; with two workers about four are in flight.
const PER_WORKER_CAPACITY: usize = 2;
const MAX_WORKERS: usize = 2;

/// An epoch's batches, produced in order on background threads.
///
/// Worker `k` of `K` makes batches `start + k, start + k + K, ...` and sends
/// them on its own bounded channel; the iterator reads the channels round
/// robin. So the order is fixed and batch `b` depends only on
/// (seed, epoch, b), never on thread timing. Dropping the loader stops and
/// joins its threads (each finishes at most the batch it is making).
pub struct Loader {
    receivers: Vec<Receiver<Batch>>,
    handles: Vec<Option<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
    next: usize,
    end: usize,
    start: usize,
}

impl Loader {
    /// Batch `b` is [`make_batch`] of the epoch's `b`-th slice of indices
    /// with `pipeline` and [`batch_rng`]`(seed, epoch, b)`. `start_batch`
    /// resumes mid-epoch: batches before it are skipped without being made.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        split: Arc<Split>,
        shape: [usize; 3],
        norm: Normalization,
        pipeline: Option<Pipeline>,
        batch_size: usize,
        shuffle: bool,
        drop_last: bool,
        seed: u64,
        epoch: u64,
        start_batch: usize,
    ) -> Loader {
        assert!(batch_size > 0, "batch_size must be positive");
        let n = split.len();
        let end = num_batches(n, batch_size, drop_last);
        let start = start_batch.min(end);
        let order: Arc<Vec<usize>> = Arc::new(if shuffle {
            epoch_order(n, seed, epoch)
        } else {
            (0..n).collect()
        });
        let workers = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .clamp(1, MAX_WORKERS)
            .min((end - start).max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let norm = Arc::new(norm);
        let pipeline = Arc::new(pipeline);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for k in 0..workers {
            let (tx, rx) = sync_channel(PER_WORKER_CAPACITY);
            let (split, order, norm, pipeline, stop) = (
                split.clone(),
                order.clone(),
                norm.clone(),
                pipeline.clone(),
                stop.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("data-loader-{k}"))
                .spawn(move || {
                    let mut b = start + k;
                    while b < end && !stop.load(Ordering::Relaxed) {
                        let lo = b * batch_size;
                        let hi = (lo + batch_size).min(n);
                        let mut rng = batch_rng(seed, epoch, b as u64);
                        let batch = make_batch(
                            &split,
                            &order[lo..hi],
                            shape,
                            &norm,
                            Option::as_ref(&pipeline),
                            &mut rng,
                        );
                        // The receiver is gone: the loader was dropped.
                        if tx.send(batch).is_err() {
                            return;
                        }
                        b += workers;
                    }
                })
                .expect("cannot spawn a data loader thread");
            receivers.push(rx);
            handles.push(Some(handle));
        }
        Loader {
            receivers,
            handles,
            stop,
            next: start,
            end,
            start,
        }
    }

    /// Batches in the whole epoch (including any skipped by `start_batch`).
    pub fn num_batches(&self) -> usize {
        self.end
    }

    /// Index of the batch the next call to `next` returns.
    pub fn next_batch_index(&self) -> usize {
        self.next
    }
}

/// Batches in an epoch of `n` examples.
pub fn num_batches(n: usize, batch_size: usize, drop_last: bool) -> usize {
    if drop_last {
        n / batch_size
    } else {
        n.div_ceil(batch_size)
    }
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.end {
            return None;
        }
        let k = (self.next - self.start) % self.receivers.len();
        match self.receivers[k].recv() {
            Ok(batch) => {
                self.next += 1;
                Some(batch)
            }
            Err(_) => {
                // The worker ended early: it panicked. Surface its panic here.
                self.next = self.end;
                if let Some(Err(payload)) = self.handles[k].take().map(JoinHandle::join) {
                    std::panic::resume_unwind(payload);
                }
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Loader {}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receivers wakes any worker blocked in send.
        self.receivers.clear();
        for h in self.handles.iter_mut().filter_map(Option::take) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn setup(n: usize) -> (Arc<Split>, [usize; 3], Normalization) {
        let d = crate::load(&format!("synthetic:{n}")).unwrap();
        let norm = Normalization::of(&d.train, d.shape);
        (Arc::new(d.train), d.shape, norm)
    }

    fn aug() -> Option<Pipeline> {
        Some(Pipeline {
            steps: vec![
                crate::Transform::PadCrop { padding: 4 },
                crate::Transform::Flip,
            ],
        })
    }

    fn direct(
        split: &Split,
        shape: [usize; 3],
        norm: &Normalization,
        bs: usize,
        drop_last: bool,
        seed: u64,
        epoch: u64,
    ) -> Vec<Batch> {
        let order = epoch_order(split.len(), seed, epoch);
        let nb = num_batches(split.len(), bs, drop_last);
        (0..nb)
            .map(|b| {
                let hi = ((b + 1) * bs).min(split.len());
                make_batch(
                    split,
                    &order[b * bs..hi],
                    shape,
                    norm,
                    aug().as_ref(),
                    &mut batch_rng(seed, epoch, b as u64),
                )
            })
            .collect()
    }

    #[test]
    fn yields_the_same_batches_as_make_batch() {
        let (split, shape, norm) = setup(103);
        let want = direct(&split, shape, &norm, 10, false, 5, 2);
        let loader = Loader::new(
            split.clone(),
            shape,
            norm.clone(),
            aug(),
            10,
            true,
            false,
            5,
            2,
            0,
        );
        assert_eq!(loader.num_batches(), 11);
        assert_eq!(loader.len(), 11);
        let got: Vec<Batch> = loader.collect();
        assert_eq!(got.len(), 11);
        assert_eq!(got.last().unwrap().len, 3);
        assert_eq!(got, want);
    }

    #[test]
    fn loader_batches_match_the_float_path_and_make_batch() {
        let (split, shape, norm) = setup(53);
        let basic: Vec<Batch> = Loader::new(
            split.clone(),
            shape,
            norm.clone(),
            aug(),
            8,
            true,
            false,
            4,
            1,
            0,
        )
        .collect();
        let order = epoch_order(split.len(), 4, 1);
        let piped: Vec<Batch> = (0..num_batches(split.len(), 8, false))
            .map(|b| {
                let hi = ((b + 1) * 8).min(split.len());
                crate::pipeline::make_batch_float(
                    &split,
                    &order[b * 8..hi],
                    shape,
                    &norm,
                    aug().as_ref().unwrap(),
                    &mut batch_rng(4, 1, b as u64),
                )
            })
            .collect();
        assert_eq!(piped, basic);
        let rich = Pipeline {
            steps: vec![
                crate::Transform::RandAugment { n: 2, m: 9 },
                crate::Transform::Cutout { size: 3 },
            ],
        };
        let order = epoch_order(split.len(), 4, 1);
        let got: Vec<Batch> = Loader::new(
            split.clone(),
            shape,
            norm.clone(),
            Some(rich.clone()),
            8,
            true,
            false,
            4,
            1,
            2,
        )
        .collect();
        assert_eq!(got.len(), 5);
        for (k, b) in got.iter().enumerate() {
            let bi = k + 2;
            let hi = ((bi + 1) * 8).min(53);
            let want = make_batch(
                &split,
                &order[bi * 8..hi],
                shape,
                &norm,
                Some(&rich),
                &mut batch_rng(4, 1, bi as u64),
            );
            assert_eq!(*b, want);
        }
    }

    #[test]
    fn drop_last_and_no_shuffle() {
        let (split, shape, norm) = setup(103);
        let got: Vec<Batch> = Loader::new(
            split.clone(),
            shape,
            norm.clone(),
            None,
            10,
            false,
            true,
            5,
            0,
            0,
        )
        .collect();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|b| b.len == 10));
        let labels: Vec<u32> = got.iter().flat_map(|b| b.labels.clone()).collect();
        assert_eq!(labels, split.labels[..100]);
    }

    #[test]
    fn resumes_from_start_batch_identically() {
        let (split, shape, norm) = setup(100);
        let full: Vec<Batch> = Loader::new(
            split.clone(),
            shape,
            norm.clone(),
            aug(),
            8,
            true,
            false,
            1,
            7,
            0,
        )
        .collect();
        let resumed: Vec<Batch> = Loader::new(
            split.clone(),
            shape,
            norm.clone(),
            aug(),
            8,
            true,
            false,
            1,
            7,
            5,
        )
        .collect();
        assert_eq!(full.len(), 13);
        assert_eq!(resumed[..], full[5..]);
        let past_end = Loader::new(split, shape, norm, aug(), 8, true, false, 1, 7, 99);
        assert_eq!(past_end.count(), 0);
    }

    #[test]
    fn dropping_mid_epoch_returns_promptly() {
        let (split, shape, norm) = setup(2000);
        let t = Instant::now();
        for _ in 0..5 {
            let mut loader = Loader::new(
                split.clone(),
                shape,
                norm.clone(),
                aug(),
                16,
                true,
                false,
                3,
                0,
                0,
            );
            assert!(loader.next().is_some());
            // Let the workers fill their channels and block in send.
            std::thread::sleep(Duration::from_millis(50));
            drop(loader);
        }
        // Never read at all.
        drop(Loader::new(
            split,
            shape,
            norm,
            aug(),
            16,
            true,
            false,
            3,
            0,
            0,
        ));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn empty_split_yields_nothing() {
        let loader = Loader::new(
            Arc::new(Split::default()),
            [3, 2, 2],
            Normalization::identity(3),
            None,
            4,
            true,
            false,
            0,
            0,
            0,
        );
        assert_eq!(loader.count(), 0);
    }
}
