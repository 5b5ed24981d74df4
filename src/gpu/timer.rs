//! Timing GPU work: timestamp queries where the adapter has them, otherwise
//! the wall clock around a submit and a wait. Blocking ([`GpuTimer::time`],
//! native) or awaited ([`GpuTimer::time_async`], both; the browser page's
//! benchmark).

use super::{Deferred, Gpu};
use crate::error::Result;
use web_time::Instant;

/// How a [`GpuTimer`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Timestamps written by the device at the start and end of the compute
    /// pass: device time only, no submit or wait overhead.
    Timestamp,
    /// Host wall clock from before the submit until the device is idle:
    /// includes the submit and the wait (tens of µs).
    WallClock,
}

impl TimerKind {
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Timestamp => "timestamp",
            TimerKind::WallClock => "wall",
        }
    }
}

/// Times one compute pass at a time. Built once; each [`GpuTimer::time`]
/// records a pass, submits it, waits for it and returns its duration.
pub struct GpuTimer {
    kind: TimerKind,
    /// Deferred: on GL query sets and buffers are destroyed under the device lock.
    queries: Option<Deferred<Queries>>,
}

struct Queries {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}

impl GpuTimer {
    /// Uses timestamp queries when the device was created with
    /// `TIMESTAMP_QUERY` (the [`Gpu`] asks for it whenever the adapter has
    /// it), else the wall clock.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        if !gpu
            .device()
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Ok(Self::wall_clock());
        }
        let queries = gpu.scoped("creating the timestamp queries", || {
            let device = gpu.device();
            Queries {
                set: device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("timer"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timer resolve"),
                    size: 16,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                readback: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timer readback"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                period_ns: gpu.queue().get_timestamp_period() as f64,
            }
        })?;
        Ok(GpuTimer {
            kind: TimerKind::Timestamp,
            queries: Some(gpu.defer(queries)),
        })
    }

    /// A timer that always uses the wall clock.
    pub fn wall_clock() -> Self {
        GpuTimer {
            kind: TimerKind::WallClock,
            queries: None,
        }
    }

    pub fn kind(&self) -> TimerKind {
        self.kind
    }

    /// Records `record` into one compute pass, submits it, waits, and
    /// returns the pass's duration in seconds. Work submitted earlier is
    /// waited for first, so it is not counted.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time(&self, gpu: &Gpu, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) -> Result<f64> {
        gpu.wait()?;
        let encoder = self.encode(gpu, record);
        let Some(q) = &self.queries else {
            let start = Instant::now();
            gpu.submit(encoder)?;
            gpu.wait()?;
            return Ok(start.elapsed().as_secs_f64());
        };
        gpu.submit(encoder)?;
        pollster::block_on(q.read(gpu))
    }

    /// [`GpuTimer::time`], awaiting rather than blocking (in a browser a
    /// wait is a promise). On the wall clock the time runs from the submit
    /// to the device reporting it done (`onSubmittedWorkDone` in WebGPU).
    pub async fn time_async(
        &self,
        gpu: &Gpu,
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) -> Result<f64> {
        work_done(gpu).await?;
        let encoder = self.encode(gpu, record);
        let Some(q) = &self.queries else {
            let start = Instant::now();
            gpu.submit(encoder)?;
            work_done(gpu).await?;
            return Ok(start.elapsed().as_secs_f64());
        };
        gpu.submit(encoder)?;
        q.read(gpu).await
    }

    /// One pass holding `record`, with the timestamps written around it and
    /// resolved into the readback buffer when there are queries.
    fn encode(
        &self,
        gpu: &Gpu,
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) -> wgpu::CommandEncoder {
        let mut encoder = gpu.encoder("timed");
        {
            let timestamp_writes =
                self.queries
                    .as_ref()
                    .map(|q| wgpu::ComputePassTimestampWrites {
                        query_set: &q.set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed"),
                timestamp_writes,
            });
            record(&mut pass);
        }
        if let Some(q) = &self.queries {
            encoder.resolve_query_set(&q.set, 0..2, &q.resolve, 0);
            encoder.copy_buffer_to_buffer(&q.resolve, 0, &q.readback, 0, 16);
        }
        encoder
    }
}

impl Queries {
    /// The submitted pass's duration in seconds, from its two timestamps.
    async fn read(&self, gpu: &Gpu) -> Result<f64> {
        let ticks: Vec<u64> =
            super::buffer::read_mapped(gpu, &self.readback, 0..16, "the timestamps").await?;
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * self.period_ns * 1e-9)
    }
}

/// Until every submitted command has run.
async fn work_done(gpu: &Gpu) -> Result<()> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        gpu.wait()
    }
    #[cfg(target_arch = "wasm32")]
    {
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        gpu.queue().on_submitted_work_done(move || {
            let _ = sender.send(());
        });
        receiver.receive().await;
        gpu.settle("waiting for the device").await
    }
}

impl std::fmt::Debug for GpuTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTimer")
            .field("kind", &self.kind)
            .finish()
    }
}
