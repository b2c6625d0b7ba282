output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "CIDR of the VPC (database and endpoint clients)."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone (EKS nodes, RDS, endpoints)."
  value       = [for zone in var.availability_zones : aws_subnet.private[zone].id]
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone (NAT, internet-facing load balancers)."
  value       = [for zone in var.availability_zones : aws_subnet.public[zone].id]
}
