/*
 * Every gRPC service rayc's daemons and workers serve: the list tests and fuzzers walk (the
 * security test checks it against the proto files, so a new service cannot be missed).
 */
#include "common/pb.h"
#include "proto/gcs_actor.pb-c.h"

const ProtobufCServiceDescriptor *const pb_services[] = {
    &rayc__node_info_gcs_service__descriptor,
    &rayc__job_info_gcs_service__descriptor,
    &rayc__internal_kvgcs_service__descriptor,
    &rayc__worker_info_gcs_service__descriptor,
    &rayc__internal_pub_sub_gcs_service__descriptor,
    &rayc__actor_info_gcs_service__descriptor,
    &rayc__placement_group_info_gcs_service__descriptor,
    &rayc__actor_worker_service__descriptor,
    &rayc__node_manager_service__descriptor,
    &rayc__object_manager_service__descriptor,
    &rayc__core_worker_service__descriptor,
    &rayc__job_submission_service__descriptor,
    &rayc__task_info_gcs_service__descriptor,
    &rayc__event_gcs_service__descriptor,
};

const size_t pb_n_services = sizeof(pb_services) / sizeof(pb_services[0]);
