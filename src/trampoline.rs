//! Exported hook entry points. Each is a naked x86_64 stub that hands its return address (the call
//! site inside the caller) to [`crate::guard::note_caller`] and then tail-jumps to the Rust hook
//! body with all argument registers and the stack exactly as the caller left them, so the body is
//! an ordinary `extern "C"` function of the hooked signature, for any number of arguments.
//!
//! This replaces `redhook`'s `hook!` macro: same declarative idea, but redhook resolves the real
//! function only through RTLD_NEXT, which is NULL inside Python extensions and panics (notes §2),
//! and it cannot see the caller, which the resolution needs (notes §3).

#[cfg(not(target_arch = "x86_64"))]
compile_error!("dagz hooks are implemented for x86_64 only");

/// `trampoline!(PQconnectdb => crate::hooks_pg::pq_connectdb);`
#[macro_export]
macro_rules! trampoline {
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
            // variadic hooks), align, call note_caller(ret), restore, jump.
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
