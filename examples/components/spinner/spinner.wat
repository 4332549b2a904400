;; spinner: a hostile guest in WebAssembly text (about a kilobyte, no WASI), for the limits
;; tests. The first byte of the message picks the misbehaviour:
;;   "r"   recurse without end (the call stack runs out)
;;   "oN"  answer with N MiB of output (memory grown to hold it)
;;   "l"   call the host's log in a tight loop      "s"  call the host's state.get likewise
;;   "x"   spin in an empty loop                    else answer "ok"
(module
  (import "greentic-py:host/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  (import "greentic-py:host/state@0.1.0" "get" (func $state_get (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 512) "spam")
  (data (i32.const 520) "ok")

  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32)
        (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $at) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (global.get $heap) (i32.const 16))
                                              (i32.const 1)))
                        (i32.const -1))
              (then unreachable))))
    (local.get $at))

  (func $recurse (param $depth i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))

  ;; the decimal number in content[1..len]
  (func $number (param $at i32) (param $len i32) (result i32)
    (local $i i32)
    (local $n i32)
    (local.set $i (i32.const 1))
    (block $done
      (loop $digit
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
                               (i32.sub (i32.load8_u (i32.add (local.get $at) (local.get $i)))
                                        (i32.const 48))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $digit)))
    (local.get $n))

  (func $answer (param $at i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 1))                ;; success = true
    (i32.store8 (i32.const 68) (i32.const 1))                ;; data = some(
    (i32.store (i32.const 72) (local.get $at))               ;;   ptr
    (i32.store (i32.const 76) (local.get $len))              ;;   len)
    (i32.store8 (i32.const 80) (i32.const 0))                ;; error = none
    (i32.const 64))

  (func (export "execute") (param $id i32) (param $id_len i32) (param $content i32)
        (param $content_len i32) (param $sender i32) (param $sender_len i32) (param $ts i64)
        (result i32)
    (local $first i32)
    (local $mib i32)
    (local $at i32)
    (if (i32.eqz (local.get $content_len))
      (then (return (call $answer (i32.const 520) (i32.const 2)))))
    (local.set $first (i32.load8_u (local.get $content)))
    (if (i32.eq (local.get $first) (i32.const 114))          ;; r
      (then (return (call $recurse (i32.const 0)))))
    (if (i32.eq (local.get $first) (i32.const 108))          ;; l
      (then (loop $spam (call $log (i32.const 1) (i32.const 512) (i32.const 4)) (br $spam))))
    (if (i32.eq (local.get $first) (i32.const 115))          ;; s
      (then (loop $poll (call $state_get (i32.const 512) (i32.const 4) (i32.const 256))
                        (br $poll))))
    (if (i32.eq (local.get $first) (i32.const 120))          ;; x
      (then (loop $spin (br $spin))))
    (if (i32.eq (local.get $first) (i32.const 111))          ;; o
      (then
        (local.set $mib (call $number (local.get $content) (local.get $content_len)))
        (local.set $at (i32.mul (memory.size) (i32.const 65536)))
        (if (i32.eq (memory.grow (i32.mul (local.get $mib) (i32.const 16))) (i32.const -1))
          (then unreachable))
        (return (call $answer (local.get $at) (i32.mul (local.get $mib) (i32.const 1048576))))))
    (call $answer (i32.const 520) (i32.const 2)))

  (func (export "cabi_post_execute") (param i32)
    (global.set $heap (i32.const 1024)))
)
