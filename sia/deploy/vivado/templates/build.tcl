# sia: full flow. vivado -mode batch -source tcl/build.tcl
# Creates the project (create_project.tcl), then synthesis, implementation, the three
# reports sia reads back (`sia deploy reports`), the bitstream and the .hwh for PYNQ.
set here [file dirname [file normalize [info script]]]
set root [file dirname $here]
source [file join $here create_project.tcl]

set out [file join $root $output_dir]
file mkdir $out

proc sia_check_run {run} {
    set status [get_property STATUS [get_runs $run]]
    set progress [get_property PROGRESS [get_runs $run]]
    if {$progress ne "100%"} {
        error "sia: run $run did not complete (status: $status); see its log in the project"
    }
}

launch_runs synth_1 -jobs $jobs
wait_on_run synth_1
sia_check_run synth_1

launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
sia_check_run impl_1

open_run impl_1
report_utilization -file [file join $out utilization.rpt]
report_utilization -hierarchical -file [file join $out utilization_hier.rpt]
report_timing_summary -delay_type min_max -max_paths 10 -report_unconstrained \
    -file [file join $out timing_summary.rpt]
report_power -file [file join $out power.rpt]

# Bitstream and hardware handoff (.hwh) side by side with the same base name: PYNQ's
# Overlay("sia.bit") looks for sia.hwh next to it.
set impl_dir [get_property DIRECTORY [get_runs impl_1]]
set bits [glob -nocomplain -directory $impl_dir *.bit]
if {[llength $bits] == 0} { error "sia: no bitstream found in $impl_dir" }
file copy -force [lindex $bits 0] [file join $out ${overlay_name}.bit]
set proj_dir [get_property DIRECTORY [current_project]]
set hwh {}
foreach pattern [list \
        [file join $proj_dir ${project_name}.gen sources_1 bd $bd_name hw_handoff ${bd_name}.hwh] \
        [file join $proj_dir ${project_name}.srcs sources_1 bd $bd_name hw_handoff ${bd_name}.hwh]] {
    set hwh [concat $hwh [glob -nocomplain $pattern]]
}
if {[llength $hwh] == 0} { error "sia: no ${bd_name}.hwh found under $proj_dir" }
file copy -force [lindex $hwh 0] [file join $out ${overlay_name}.hwh]
puts "sia: wrote [file join $out ${overlay_name}.bit] and [file join $out ${overlay_name}.hwh]"
puts "sia: read the reports back with: sia deploy reports $out"
