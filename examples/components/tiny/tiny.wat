;; tiny: the seed world in hand-written WebAssembly text, made a component with wasm-tools.
;; It answers with the message's content uppercased (ASCII), like the Python echo guest, at
;; about 1 KB instead of 18 MB. No WASI, no imports.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))

  ;; bump allocator for the canonical ABI (arguments are copied in here)
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

  ;; execute(message{id, content, sender, timestamp}) -> outcome{success, data, error}
  (func (export "execute") (param $id i32) (param $id_len i32) (param $content i32)
        (param $content_len i32) (param $sender i32) (param $sender_len i32) (param $ts i64)
        (result i32)
    (local $i i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $content_len)))
        (local.set $c (i32.load8_u (i32.add (local.get $content) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (local.get $content) (local.get $i))
                            (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store8 (i32.const 64) (i32.const 1))                ;; success = true
    (i32.store8 (i32.const 68) (i32.const 1))                ;; data = some(
    (i32.store (i32.const 72) (local.get $content))          ;;   content ptr
    (i32.store (i32.const 76) (local.get $content_len))      ;;   content len)
    (i32.store8 (i32.const 80) (i32.const 0))                ;; error = none
    (i32.const 64))

  ;; after the host has read the result, free everything this call allocated
  (func (export "cabi_post_execute") (param i32)
    (global.set $heap (i32.const 1024)))
)
