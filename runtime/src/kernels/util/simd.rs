//! Run-time choice of the widest vector instructions (AVX-512, AVX2 with FMA) and the
//! [`vectorised!`] macro that compiles a loop for each.

/// The widest vector instructions this CPU has, of those the kernels are compiled for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simd {
    Avx512,
    Avx2,
    Baseline,
}

pub(crate) fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// `vectorised! { fn name[T: Elem](args) -> R = body; }` defines `name`, which calls
/// `body` (an `#[inline(always)]` fn with the same generics, in brackets here, and
/// arguments) compiled for AVX-512, or AVX2 with FMA, where this CPU has it. The crate is
/// built for baseline x86-64, whose loops vectorise 4 lanes wide (2 in f64); inlined
/// into these wrappers they run 16 wide. (A closure handed to such a wrapper is not
/// inlined when it is large, and then runs at SSE2 width: named functions only; small
/// closures inside the body are inlined with it.) `unsafe fn` keeps the body's contract.
macro_rules! vectorised {
    ($(#[$meta:meta])* $vis:vis fn $name:ident[$($g:tt)*]($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$($g)*>($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: `$body` is safe; the wrappers only need the CPU features.
            unsafe { $crate::kernels::util::simd::vectorised!(@dispatch [$($g)*] $body($($arg: $ty),*) $(-> $ret)?) }
        }
    };
    ($(#[$meta:meta])* $vis:vis unsafe fn $name:ident[$($g:tt)*]($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident;) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name<$($g)*>($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: the caller keeps `$body`'s contract; the wrappers only need the CPU
            // features.
            unsafe { $crate::kernels::util::simd::vectorised!(@dispatch [$($g)*] $body($($arg: $ty),*) $(-> $ret)?) }
        }
    };
    (@dispatch [$($g:tt)*] $body:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments, unused_unsafe)]
            unsafe fn avx512<$($g)*>($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: as the wrapper's (`$body`'s contract is its caller's).
                unsafe { $body($($arg),*) }
            }
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments, unused_unsafe)]
            unsafe fn avx2<$($g)*>($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: as the wrapper's.
                unsafe { $body($($arg),*) }
            }
            match $crate::kernels::util::simd::simd() {
                // The features were detected at run time.
                $crate::kernels::util::simd::Simd::Avx512 => avx512($($arg),*),
                $crate::kernels::util::simd::Simd::Avx2 => avx2($($arg),*),
                $crate::kernels::util::simd::Simd::Baseline => $body($($arg),*),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body($($arg),*)
        }
    }};
}
pub(crate) use vectorised;
