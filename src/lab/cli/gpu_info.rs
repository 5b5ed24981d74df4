//! Prints the adapter wgpu-train would use, every adapter wgpu can see, and
//! the limits and features that matter for training.
//!
//! `cargo run --example gpu_info` (honours WGPU_BACKEND and WGPU_ADAPTER_NAME)

use crate::Gpu;

/// Show the adapter wgpu-train would use, its limits and features.
#[derive(clap::Parser, Debug)]
#[command(version, about)]
struct Args {}

/// The flags, for the example and for the `wgpu-train` subcommand alike.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs with flags parsed by [`command`] (a parse error exits as clap does).
pub fn main_with(matches: &clap::ArgMatches) -> std::process::ExitCode {
    let _args: Args =
        <Args as clap::FromArgMatches>::from_arg_matches(matches).unwrap_or_else(|e| e.exit());
    let gpu = match Gpu::new() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("adapter:  {}", gpu.summary());
    println!("software: {}", gpu.is_software());
    // The paths the crate takes on this backend (see src/gpu/mod.rs).
    println!(
        "device lock (one thread at a time on the device): {}",
        gpu.serialises()
    );
    println!(
        "zero-initialised workgroup memory (kernels not trusted, below): {}",
        gpu.zero_initialises_workgroup_memory()
    );
    println!("runtime checks: {}", gpu.checks_summary());
    match gpu.subgroup_sizes() {
        Some((lo, hi)) => println!(
            "subgroups: sizes {lo}..={hi} (softmax-CE v4 and column-sum v3 offered to the tuner)"
        ),
        None => println!("subgroups: not used on this device"),
    }
    match std::env::var("WGPU_TRAIN_LIMITS") {
        Ok(v) if !v.is_empty() => println!("limits capped by WGPU_TRAIN_LIMITS={v}"),
        _ => {}
    }

    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let all = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    println!("\nall adapters wgpu can see ({}):", all.len());
    for a in &all {
        let i = a.get_info();
        println!("  - {} ({:?}, {:?})", i.name, i.backend, i.device_type);
    }

    let l = gpu.limits();
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
    println!("\nlimits the device was created with:");
    println!(
        "  max_buffer_size                      {}",
        mib(l.max_buffer_size)
    );
    println!(
        "  max_storage_buffer_binding_size      {}",
        mib(l.max_storage_buffer_binding_size as u64)
    );
    println!(
        "  max_storage_buffers_per_shader_stage {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "  max_compute_workgroup_storage_size   {} bytes",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_workgroup {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_compute_workgroup_size           {} × {} × {}",
        l.max_compute_workgroup_size_x,
        l.max_compute_workgroup_size_y,
        l.max_compute_workgroup_size_z
    );
    println!(
        "  max_compute_workgroups_per_dimension {}",
        l.max_compute_workgroups_per_dimension
    );

    let f = gpu.adapter().features();
    println!("\nadapter features relevant here:");
    for (name, flag) in [
        ("TIMESTAMP_QUERY", wgpu::Features::TIMESTAMP_QUERY),
        ("SHADER_F16", wgpu::Features::SHADER_F16),
        ("SUBGROUP", wgpu::Features::SUBGROUP),
        ("IMMEDIATES", wgpu::Features::IMMEDIATES),
    ] {
        println!(
            "  {name:<16} {}",
            if f.contains(flag) { "yes" } else { "no" }
        );
    }
    std::process::ExitCode::SUCCESS
}

/// The example's entry point: parses the process's arguments.
pub fn main() -> std::process::ExitCode {
    main_with(&command().get_matches())
}
