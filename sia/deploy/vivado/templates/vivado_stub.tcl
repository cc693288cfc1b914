# sia: stub Vivado commands, so that tclsh can run the generated scripts end to end
# (`sia deploy vivado --check`). Every Vivado command is logged to $::sia_stub_log as one
# Tcl list per line; results are plausible handles, and the run / report commands create
# the files the real ones would, in a scratch tree. This proves the scripts parse and that
# their control flow reaches the end; it says nothing about what Vivado would accept.

set ::sia_stub_calls {}
proc sia_stub_log {args} {
    lappend ::sia_stub_calls $args
    if {[info exists ::sia_stub_log]} {
        set f [open $::sia_stub_log a]; puts $f [list {*}$args]; close $f
    }
}
proc sia_stub_opt {argv name {default ""}} {
    set i [lsearch -exact $argv $name]
    if {$i < 0 || $i + 1 >= [llength $argv]} { return $default }
    return [lindex $argv [expr {$i + 1}]]
}
proc sia_stub_need {cond msg} {
    if {![uplevel 1 [list expr $cond]]} { error "vivado stub: $msg" }
}

set ::sia_stub_project ""
proc create_project {args} {
    sia_stub_log create_project {*}$args
    sia_stub_need {[llength $args] >= 2} "create_project NAME DIR"
    set ::sia_stub_project_name [lindex $args 0]
    set ::sia_stub_project [lindex $args 1]
    sia_stub_need {[sia_stub_opt $args -part] ne ""} "create_project without -part"
    file mkdir $::sia_stub_project
    return $::sia_stub_project_name
}
proc create_bd_design {name} {
    sia_stub_log create_bd_design $name
    set ::sia_stub_bd $name
    set d [file join $::sia_stub_project $::sia_stub_project_name.gen sources_1 bd $name hw_handoff]
    file mkdir $d
    set f [open [file join $d $name.hwh] w]; puts $f "<stub/>"; close $f
    return $name
}
proc create_bd_cell {args} {
    sia_stub_log create_bd_cell {*}$args
    set type [sia_stub_opt $args -type]
    sia_stub_need {$type in {ip module hier}} "create_bd_cell -type $type"
    if {$type eq "ip"} { sia_stub_need {[sia_stub_opt $args -vlnv] ne ""} "ip cell without -vlnv" }
    if {$type eq "module"} { sia_stub_need {[sia_stub_opt $args -reference] ne ""} "module cell without -reference" }
    return "/[lindex $args end]"
}
proc set_property {args} {
    sia_stub_log set_property {*}$args
    if {[lindex $args 0] eq "-dict"} {
        sia_stub_need {[llength [lindex $args 1]] % 2 == 0} "set_property -dict with an odd-length list"
        sia_stub_need {[llength $args] == 3} "set_property -dict LIST OBJECTS"
    } else {
        sia_stub_need {[llength $args] >= 3} "set_property NAME VALUE OBJECTS"
    }
    return ""
}
proc get_property {args} {
    sia_stub_log get_property {*}$args
    set name [lindex $args 0]
    switch -- $name {
        PROGRESS { return "100%" }
        STATUS { return "write_bitstream Complete!" }
        DIRECTORY {
            set obj [lindex $args end]
            if {[string match *impl_1* $obj]} {
                set d [file join $::sia_stub_project $::sia_stub_project_name.runs impl_1]
                file mkdir $d
                set f [open [file join $d stub_wrapper.bit] w]; puts $f stub; close $f
                return $d
            }
            return $::sia_stub_project
        }
        default { return "" }
    }
}
proc get_runs {args} { sia_stub_log get_runs {*}$args; return [lindex $args end] }
proc get_files {args} { sia_stub_log get_files {*}$args; return [lindex $args end] }
proc make_wrapper {args} { sia_stub_log make_wrapper {*}$args; return "${::sia_stub_bd}_wrapper.v" }
proc get_board_parts {args} { sia_stub_log get_board_parts {*}$args; return "" }
foreach cmd {get_bd_cells get_bd_pins get_bd_intf_pins get_bd_nets get_bd_addr_segs
             get_bd_addr_spaces current_project current_design current_fileset} {
    proc $cmd {args} [format {
        sia_stub_log %1$s {*}$args
        if {"%1$s" eq "get_bd_cells" && [lsearch $args -filter] >= 0} { return "/rst_ps7_0_100M" }
        if {"%1$s" eq "get_bd_nets"} { return "" }
        return [lindex $args end]
    } $cmd]
}
foreach cmd {report_utilization report_timing_summary report_power} {
    proc $cmd {args} [format {
        sia_stub_log %1$s {*}$args
        set f [sia_stub_opt $args -file]
        sia_stub_need {$f ne ""} "%1$s without -file"
        set h [open $f w]; puts $h "stub %1$s"; close $h
    } $cmd]
}
proc unknown {args} {
    set cmd [lindex $args 0]
    set known {set_property add_files update_compile_order apply_bd_automation connect_bd_net
        connect_bd_intf_net assign_bd_address validate_bd_design save_bd_design generate_target
        launch_runs wait_on_run open_run make_bd_pins_external make_bd_intf_pins_external
        create_bd_port create_bd_intf_port}
    sia_stub_need {$cmd in $known} "unknown command '$cmd'"
    sia_stub_log {*}$args
    return ""
}
