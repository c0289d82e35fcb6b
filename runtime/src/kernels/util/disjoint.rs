//! [`Disjoint`]: a buffer that parallel tasks write in interleaved, disjoint pieces.

use std::mem::MaybeUninit;

/// A buffer that parallel tasks write in disjoint pieces that interleave (a Winograd
/// band's tiles of every ξ, a BN channel's rows of every sample), so that it cannot be
/// split into one slice per task: raw pointer writes, each checked against the length.
#[derive(Clone, Copy)]
pub(crate) struct Disjoint<T> {
    ptr: *mut T,
    len: usize,
}
// SAFETY: the tasks write disjoint elements (each caller says which) and nothing reads
// the buffer until they have all finished.
unsafe impl<T> Send for Disjoint<T> {}
unsafe impl<T> Sync for Disjoint<T> {}

impl<T: Copy> Disjoint<T> {
    pub fn of(buf: &mut [T]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// The first `len` elements of `out`'s spare capacity, to be written.
    pub fn uninit(out: &mut Vec<T>, len: usize) -> Self {
        assert!(out.capacity() >= len, "Disjoint::uninit: capacity");
        Self {
            ptr: out.as_mut_ptr(),
            len,
        }
    }

    /// buf[at..at + vals.len()] = vals.
    ///
    /// # Safety
    /// No other task touches these elements meanwhile.
    #[inline(always)]
    pub unsafe fn put(self, at: usize, vals: &[T]) {
        assert!(at + vals.len() <= self.len, "Disjoint::put out of bounds");
        // SAFETY: in bounds (asserted); the caller says no other task writes here, and
        // `vals` cannot overlap the buffer, which only this type's writers reach.
        unsafe { std::ptr::copy_nonoverlapping(vals.as_ptr(), self.ptr.add(at), vals.len()) }
    }

    /// buf[at..at + len], to be written.
    ///
    /// # Safety
    /// No other task touches these elements while the slice lives.
    #[inline(always)]
    pub unsafe fn slice<'a>(self, at: usize, len: usize) -> &'a mut [MaybeUninit<T>] {
        assert!(at + len <= self.len, "Disjoint::slice out of bounds");
        // SAFETY: in bounds (asserted) of a live allocation; the caller says the slice is
        // the only access to these elements while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(at).cast(), len) }
    }
}
