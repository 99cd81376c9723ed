//! Exported hook entry points: naked x86_64 stubs that hand the hook body their return address
//! (the call site inside the caller, which the resolution of the real function needs)
//! and tail-jump to it with the caller's argument registers and stack untouched, so the body is an
//! ordinary `extern "C"` function of the hooked signature.
//!
//! * [`trampoline_reg!`] — for hooks with at most five integer arguments: the return address is
//!   passed as one more argument, in the next free argument register (two instructions).
//! * [`trampoline_tls!`] — for hooks with six or more arguments (`PQsetdbLogin`,
//!   `mysql_real_connect`, `mysql_real_connect_start`): the stub saves the argument registers,
//!   calls [`crate::guard::note_caller`], restores them and jumps; the body reads
//!   [`crate::guard::caller`].
//!
//! This replaces `redhook`'s `hook!` macro: same declarative idea, but redhook resolves the real
//! function only through RTLD_NEXT, which is NULL inside Python extensions and then panics, and its hooks cannot see their caller.

#[cfg(not(target_arch = "x86_64"))]
compile_error!("dagz hooks are implemented for x86_64 only");

/// `trampoline_reg!(mysql_query => body, "rdx");` — `body` takes the hooked arguments followed by
/// `caller: usize`; the register is the one of that extra argument (rdi, rsi, rdx, rcx, r8, r9).
#[macro_export]
macro_rules! trampoline_reg {
    ($($sym:ident => $body:path, $reg:literal;)*) => {$(
        #[doc = concat!("Hook entry point for `", stringify!($sym), "`; see `trampoline.rs`.")]
        #[doc = ""]
        #[doc = "# Safety"]
        #[doc = "Called by C code with the hooked function's C signature and contract."]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $sym() {
            // [rsp] = return address at entry; nothing else is touched.
            core::arch::naked_asm!(
                concat!("mov ", $reg, ", [rsp]"),
                "jmp {body}",
                body = sym $body,
            )
        }
    )*};
}

/// `trampoline_tls!(PQsetdbLogin => body);` — `body` has exactly the hooked signature.
#[macro_export]
macro_rules! trampoline_tls {
    ($($sym:ident => $body:path;)*) => {$(
        #[doc = concat!("Hook entry point for `", stringify!($sym), "`; see `trampoline.rs`.")]
        #[doc = ""]
        #[doc = "# Safety"]
        #[doc = "Called by C code with the hooked function's C signature and contract."]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C" fn $sym() {
            // At entry: [rsp] = return address, rsp ≡ 8 (mod 16). Save the six integer argument
            // registers (no float arguments in any hooked signature; al is not meaningful: no
            // variadic hooks), align, call note_caller(ret), restore, jump. Stack arguments stay
            // where the caller put them.
            core::arch::naked_asm!(
                "push rdi",
                "push rsi",
                "push rdx",
                "push rcx",
                "push r8",
                "push r9",
                "sub rsp, 8",
                "mov rdi, [rsp + 56]",
                "call {note}",
                "add rsp, 8",
                "pop r9",
                "pop r8",
                "pop rcx",
                "pop rdx",
                "pop rsi",
                "pop rdi",
                "jmp {body}",
                note = sym $crate::guard::note_caller,
                body = sym $body,
            )
        }
    )*};
}
