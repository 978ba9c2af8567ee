/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Entry of the ivshmem test guest: a PVH ELF note (so QEMU's -kernel boots
 * the ELF straight into 32-bit protected mode through pvh.bin), our own
 * flat GDT, a stack, and one interrupt stub per IDT vector that saves the
 * registers and calls isr_dispatch() in guest.c.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

        .section .note.pvh, "a", @note
        .balign 4
        .long 4                         /* name size: "Xen\0" */
        .long 4                         /* descriptor size */
        .long XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long _start                    /* 32-bit physical entry point */

        .text
        .code32
        .globl _start
_start:                                 /* %ebx = struct hvm_start_info * */
        cli
        cld
        lgdt gdt_desc
        ljmp $0x08, $1f
1:      movl $0x10, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl %eax, %fs
        movl %eax, %gs
        movl $stack_top, %esp
        pushl %ebx
        call guest_main                 /* does not return */
2:      cli
        hlt
        jmp 2b

/* Stubs: exceptions that push an error code get none pushed by us. */
        .altmacro
        .macro stub n
stub_\n:
        .if (\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || \
            (\n == 21) || (\n == 29) || (\n == 30)
        .else
        pushl $0
        .endif
        pushl $\n
        jmp isr_common
        .endm
        .macro stubaddr n
        .long stub_\n
        .endm

        .set i, 0
        .rept 256
        stub %i
        .set i, i + 1
        .endr

/* Stack on entry: vector, error code, eip, cs, eflags (struct frame). */
isr_common:
        pushal
        pushl %esp                      /* struct frame * */
        call isr_dispatch
        addl $4, %esp
        popal
        addl $8, %esp                   /* vector and error code */
        iret

        .section .rodata
        .balign 4
        .globl isr_stubs
isr_stubs:
        .set i, 0
        .rept 256
        stubaddr %i
        .set i, i + 1
        .endr

        .balign 8
gdt:    .quad 0
        .quad 0x00cf9a000000ffff        /* 0x08: flat 32-bit code */
        .quad 0x00cf92000000ffff        /* 0x10: flat 32-bit data */
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt

        .bss
        .balign 16
        .space 16384
stack_top:

        .section .note.GNU-stack, "", @progbits
