//! One device, several threads: what the GL backend needs serialised.
//!
//! wgpu's GL backend has one GL context per device and guards it with a lock
//! that gives up after 6 seconds ("Could not lock adapter context. This is
//! most-likely a deadlock", a panic). Any call that touches the context takes
//! it: buffer creation and destruction, mapping, pipeline creation, polling,
//! and `queue.submit`. On Mesa's llvmpipe a submit holds it while LLVM compiles
//! each new pipeline and while the dispatches run, so one long submit makes
//! every other thread that touches the device panic, and a second panic in a
//! destructor during the unwind aborts the process.
//!
//! The [`Gpu`](super::Gpu) therefore takes its own lock, which waits as long
//! as it must, around every call that may take the context (on GL only: the
//! other backends are free-threaded, and on GL the context serialises
//! everything anyway, so nothing is lost). Destruction is the hard part: a
//! buffer is destroyed when its last handle drops, wherever that happens. So
//! the handles the crate keeps (tensor buffers, uniforms, bind groups, query
//! sets) are [`Deferred`]: dropping one moves it to a graveyard that the next
//! locked call empties while it holds the lock.

use parking_lot::{Mutex, ReentrantMutex};
use std::any::Any;
use std::sync::Arc;

/// Objects dropped while the device lock was free, destroyed later under it.
#[derive(Default)]
pub(crate) struct Graveyard(Mutex<Vec<Box<dyn Any + Send>>>);

impl Graveyard {
    fn bury(&self, item: Box<dyn Any + Send>) {
        self.0.lock().push(item);
    }

    /// Drops every buried object. Call with the device lock held.
    fn empty(&self) {
        // Take them out first: a drop must not run under the graveyard's own
        // lock (it may bury something else).
        let dead = std::mem::take(&mut *self.0.lock());
        drop(dead);
    }
}

/// The device lock of a [`Gpu`](super::Gpu) on a backend that needs one.
pub(crate) struct Serial {
    /// Reentrant: a locked call may make another (a readback submits and
    /// waits).
    lock: ReentrantMutex<()>,
    graveyard: Arc<Graveyard>,
}

impl Serial {
    pub(crate) fn new() -> Self {
        Serial {
            lock: ReentrantMutex::new(()),
            graveyard: Arc::default(),
        }
    }

    /// Runs `f` holding the lock, after destroying what was dropped meanwhile.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.lock.lock();
        self.graveyard.empty();
        f()
    }

    pub(crate) fn graveyard(&self) -> &Arc<Graveyard> {
        &self.graveyard
    }
}

/// A wgpu object whose destruction waits for the device lock (see the module
/// docs). It dereferences to the object; on backends without a device lock
/// it drops as usual.
pub struct Deferred<T: Send + 'static> {
    value: Option<T>,
    graveyard: Option<Arc<Graveyard>>,
}

impl<T: Send + 'static> Deferred<T> {
    pub(crate) fn new(value: T, graveyard: Option<Arc<Graveyard>>) -> Self {
        Deferred {
            value: Some(value),
            graveyard,
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for Deferred<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `drop` takes the value out.
        self.value
            .as_ref()
            .expect("a Deferred holds its value until dropped")
    }
}

impl<T: Clone + Send + 'static> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Deferred::new((**self).clone(), self.graveyard.clone())
    }
}

impl<T: Send + 'static> Drop for Deferred<T> {
    fn drop(&mut self) {
        if let (Some(value), Some(graveyard)) = (self.value.take(), &self.graveyard) {
            graveyard.bury(Box::new(value));
        }
    }
}

impl<T: Send + std::fmt::Debug + 'static> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn deferred_objects_die_only_under_the_lock() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let serial = Serial::new();
        let a = Deferred::new(Counted(dropped.clone()), Some(serial.graveyard().clone()));
        let b = Deferred::new(Counted(dropped.clone()), Some(serial.graveyard().clone()));
        // Dropped on another thread while the lock is free: buried, not destroyed.
        std::thread::spawn(move || drop(a)).join().unwrap();
        drop(b);
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        // The next locked call destroys them, before running its own work.
        serial.run(|| assert_eq!(dropped.load(Ordering::SeqCst), 2));
    }

    #[test]
    fn without_a_graveyard_deferred_drops_at_once() {
        let dropped = Arc::new(AtomicUsize::new(0));
        drop(Deferred::new(Counted(dropped.clone()), None));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_lock_is_reentrant() {
        let serial = Serial::new();
        assert_eq!(serial.run(|| serial.run(|| 7)), 7);
    }
}
